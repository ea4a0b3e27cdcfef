from profiles_dagster.dagster.component import ProfilesProjectComponent
from profiles_dagster.dagster.definitions import ProfilesRunConfig, build_definitions, build_profiles_asset
from profiles_dagster.dagster.translator import ProfilesTranslator

__all__ = [
    "ProfilesProjectComponent",
    "ProfilesRunConfig",
    "ProfilesTranslator",
    "build_definitions",
    "build_profiles_asset",
]
