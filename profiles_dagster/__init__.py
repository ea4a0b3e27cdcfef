"""Run RudderStack Profiles projects (pb YAML) in your warehouse as Dagster assets."""

from profiles_dagster.dagster import ProfilesRunConfig, ProfilesTranslator, build_definitions
from profiles_dagster.errors import ProfilesError

__all__ = ["ProfilesError", "ProfilesRunConfig", "ProfilesTranslator", "build_definitions"]
