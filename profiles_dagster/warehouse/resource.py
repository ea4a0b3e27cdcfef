"""The Dagster side of the engines: `Warehouse`, a ConfigurableResource over `WarehouseEngine`.

Imported on first use (`profiles_dagster.warehouse.Warehouse`, an engine module's resource class):
importing Dagster costs about a second, which `profiles-dagster` on DuckDB never pays.
"""

from __future__ import annotations

import hashlib
import os
from typing import ClassVar

from dagster import ConfigurableResource, EnvVar

from profiles_dagster.project.siteconfig import Connection, is_secret
from profiles_dagster.warehouse.base import WarehouseEngine
from profiles_dagster.warehouse.duckdb import DuckDBConfig, DuckDBEngine


class Warehouse(WarehouseEngine, ConfigurableResource):
    """A Dagster resource that opens `Session`s on one warehouse; each engine has one (`resource_class`)."""

    env_var_fields: ClassVar[bool] = True


_RESOURCES: dict[type[WarehouseEngine], type[Warehouse]] = {}


def resource_class(config: type[WarehouseEngine], name: str, module: str) -> type[Warehouse]:
    """The Dagster resource class of an engine's configuration (`PostgresConfig` -> `PostgresWarehouse`), built
    once: the engine modules define their configuration without Dagster, so the CLI never imports it."""
    if config not in _RESOURCES:
        _RESOURCES[config] = type(name, (config, Warehouse), {"__module__": module, "__doc__": config.__doc__})
    return _RESOURCES[config]


class DuckDBWarehouse(DuckDBConfig, Warehouse):
    """`database` is a file path; DuckDB allows one writer per file, so runs go in-process."""


DuckDBWarehouse.__module__ = "profiles_dagster.warehouse.duckdb"  # where users import it from


SECRET_ENV_PREFIX = "PROFILES_DAGSTER_SECRET_"


def as_resource(warehouse: WarehouseEngine, connection: Connection | None = None) -> Warehouse:
    """The Dagster resource for an engine: a plain engine becomes its resource class, built again from its
    siteconfig `connection` when given (its `${VAR}` secrets then become EnvVars); a secret written
    literally in the siteconfig is moved behind an EnvVar (see `hide_literal_secrets`)."""
    if isinstance(warehouse, Warehouse):
        return hide_literal_secrets(warehouse)
    if isinstance(warehouse, DuckDBEngine):
        return DuckDBWarehouse(
            database=warehouse.database, output_schema=warehouse.output_schema, attach=warehouse.attach
        )
    from profiles_dagster.warehouse import warehouse_class

    cls = warehouse_class(warehouse.kind)
    if connection is not None and connection.type == warehouse.kind:
        resource = cls.from_connection(connection)
    else:
        resource = cls(**{name: getattr(warehouse, name) for name in type(warehouse).model_fields})
    return hide_literal_secrets(resource)


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
