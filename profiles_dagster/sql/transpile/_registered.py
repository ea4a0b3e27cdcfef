"""Imports every rule module of the package, so `translate` sees their rules (one import line per module).
The order is the order rules apply: semi-structured rules first, as they turn VARIANT values into the JSON
operations the scalar rules then see."""

# ruff: noqa: I001
from profiles_dagster.sql.transpile import semistructured  # noqa: F401
from profiles_dagster.sql.transpile import semistructured_postgres  # noqa: F401
from profiles_dagster.sql.transpile import scalars  # noqa: F401
from profiles_dagster.sql.transpile import implicit  # noqa: F401
from profiles_dagster.sql.transpile import postgres  # noqa: F401
from profiles_dagster.sql.transpile import spark_timestampdiff  # noqa: F401
