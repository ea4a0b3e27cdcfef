"""Run RudderStack Profiles projects (pb YAML) in your warehouse as Dagster assets."""

from profiles_dagster.dagster import (
    ProfilesProjectComponent,
    ProfilesRunConfig,
    ProfilesTranslator,
    build_definitions,
)
from profiles_dagster.errors import ProfilesError

__all__ = [
    "ProfilesError",
    "ProfilesProjectComponent",
    "ProfilesRunConfig",
    "ProfilesTranslator",
    "build_definitions",
]
