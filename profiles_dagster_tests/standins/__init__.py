"""Offline stand-ins for the cloud warehouses, as session-scoped pytest fixtures.

Import the fixtures into a test module (`from profiles_dagster_tests.standins import engine`) or a
conftest. A stand-in that cannot start fails the tests that use it with the reason; nothing is skipped.
"""

from profiles_dagster_tests.standins.fixtures import ENGINE_NAMES, Engine, engine, postgres_standin

__all__ = ["ENGINE_NAMES", "Engine", "engine", "postgres_standin"]
