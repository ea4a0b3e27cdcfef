"""Run RudderStack Profiles projects (pb YAML) in your warehouse as Dagster assets.

The Dagster names are imported on first use (PEP 562): `profiles-dagster` and the pure layers
(project, plan, sql) start without importing Dagster, which alone takes about a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from profiles_dagster.errors import ProfilesError

if TYPE_CHECKING:
    from profiles_dagster.dagster import (
        ProfilesProjectComponent,
        ProfilesRunConfig,
        ProfilesTranslator,
        build_definitions,
    )

_DAGSTER = ("ProfilesProjectComponent", "ProfilesRunConfig", "ProfilesTranslator", "build_definitions")

__all__ = [
    "ProfilesError",
    "ProfilesProjectComponent",
    "ProfilesRunConfig",
    "ProfilesTranslator",
    "build_definitions",
]


def __getattr__(name: str) -> Any:
    if name in _DAGSTER:
        import profiles_dagster.dagster

        return getattr(profiles_dagster.dagster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too: `dg list components` finds the Component by listing this module."""
    return sorted({*globals(), *_DAGSTER})
