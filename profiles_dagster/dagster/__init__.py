"""The Dagster layer: Definitions, translator, Component. Submodules are imported on first use (PEP 562)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profiles_dagster.dagster.component import ProfilesProjectComponent
    from profiles_dagster.dagster.definitions import ProfilesRunConfig, build_definitions, build_profiles_asset
    from profiles_dagster.dagster.translator import ProfilesTranslator

_WHERE = {
    "ProfilesProjectComponent": "profiles_dagster.dagster.component",
    "ProfilesRunConfig": "profiles_dagster.dagster.definitions",
    "build_definitions": "profiles_dagster.dagster.definitions",
    "build_profiles_asset": "profiles_dagster.dagster.definitions",
    "ProfilesTranslator": "profiles_dagster.dagster.translator",
}

__all__ = [
    "ProfilesProjectComponent",
    "ProfilesRunConfig",
    "ProfilesTranslator",
    "build_definitions",
    "build_profiles_asset",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
