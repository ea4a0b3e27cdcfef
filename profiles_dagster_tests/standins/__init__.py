"""Offline stand-ins for the cloud warehouses, as session-scoped pytest fixtures.

The suite's conftest registers them once, so every module shares one server per engine (and the
inputs loaded into it); a module that imported them itself would start servers of its own. A
stand-in that cannot start fails the tests that use it with the reason; nothing is skipped.
"""

from profiles_dagster_tests.standins.fixtures import ENGINE_NAMES, Engine, engine, postgres_standin

__all__ = ["ENGINE_NAMES", "Engine", "engine", "postgres_standin"]
