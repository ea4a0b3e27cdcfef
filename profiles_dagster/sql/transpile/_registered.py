"""Imports every rule module of the package, so `translate` sees their rules (one import line per module)."""

from profiles_dagster.sql.transpile import semistructured  # noqa: F401
