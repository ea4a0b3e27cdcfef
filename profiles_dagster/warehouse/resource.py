"""The Dagster side of the engines: `Warehouse`, a ConfigurableResource over `WarehouseEngine`.

Imported on first use (`profiles_dagster.warehouse.Warehouse`, an engine module's resource class):
importing Dagster costs about a second, which `profiles-dagster` on DuckDB never pays.
"""

from __future__ import annotations

import hashlib
import os

from dagster import ConfigurableResource, EnvVar

from profiles_dagster.project.siteconfig import is_secret
from profiles_dagster.warehouse.base import WarehouseEngine
from profiles_dagster.warehouse.duckdb import DuckDBConfig, DuckDBEngine


class Warehouse(WarehouseEngine, ConfigurableResource):
    """A Dagster resource that opens `Session`s on one warehouse; each engine module subclasses it."""


class DuckDBWarehouse(DuckDBConfig, Warehouse):
    """`database` is a file path; DuckDB allows one writer per file, so runs go in-process."""


DuckDBWarehouse.__module__ = "profiles_dagster.warehouse.duckdb"  # where users import it from


SECRET_ENV_PREFIX = "PROFILES_DAGSTER_SECRET_"


def as_resource(warehouse: WarehouseEngine) -> Warehouse:
    """The Dagster resource for an engine: the CLI's plain DuckDB engine becomes a `DuckDBWarehouse`;
    a secret written literally in the siteconfig is moved behind an EnvVar (see `hide_literal_secrets`)."""
    if isinstance(warehouse, Warehouse):
        return hide_literal_secrets(warehouse)
    if isinstance(warehouse, DuckDBEngine):
        return DuckDBWarehouse(database=warehouse.database, output_schema=warehouse.output_schema)
    raise TypeError(f"not a warehouse resource: {type(warehouse).__name__}")


def hide_literal_secrets(resource: Warehouse) -> Warehouse:
    """Dagster shows a resource's configured values in its UI; an EnvVar shows as its name. A secret
    written literally in siteconfig.yaml is put in this process's environment under a name of our own
    and configured as that EnvVar. Every process that loads the code location (the code server, each
    run worker) reads the siteconfig and does the same, so the value is there wherever the run goes."""
    values = {name: getattr(resource, name) for name in type(resource).model_fields}
    literal = {
        name: value
        for name, value in values.items()
        if is_secret(name) and isinstance(value, str) and value and not isinstance(value, EnvVar)
    }
    if not literal:
        return resource
    # named after the connection's other settings (host, user, ...), never the secret: one name per connection
    identity = repr(sorted((k, repr(v)) for k, v in values.items() if not is_secret(k)))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10].upper()
    for name, value in literal.items():
        variable = f"{SECRET_ENV_PREFIX}{resource.kind.upper()}_{name.upper()}_{digest}"
        os.environ[variable] = value
        values[name] = EnvVar(variable)
    return type(resource)(**values)
