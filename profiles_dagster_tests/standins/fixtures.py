"""One session-scoped fixture per engine; `engine` is parametrized over all of them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from profiles_dagster.project.siteconfig import Connection
from profiles_dagster.warehouse import warehouse_for
from profiles_dagster.warehouse.base import Warehouse

ENGINE_NAMES = ("postgres", "redshift", "snowflake", "bigquery", "databricks")
# PROFILES_DAGSTER_STANDINS=databricks,postgres runs those stand-ins instead (one engine while working on it)
ENGINE_NAMES = tuple(n for n in os.environ.get("PROFILES_DAGSTER_STANDINS", "").split(",") if n) or ENGINE_NAMES


@dataclass
class Engine:
    """A running stand-in: the pb siteconfig keys that reach it, and how long it took to start."""

    name: str
    target: dict  # pb siteconfig keys of one target (`type` too), without `schema`
    start_seconds: float
    # the stand-in's way to connect when the real client cannot reach it (Databricks); None: the resource's own
    adapt: Callable[[Warehouse], Warehouse] | None = None
    notes: dict = field(default_factory=dict)

    def connection(self, schema: str = "profiles") -> Connection:
        settings = {k: v for k, v in self.target.items() if k != "type"}
        return Connection("standin", "dev", self.name, {**settings, "schema": schema}, Path("siteconfig.yaml"))

    def warehouse(self, schema: str = "profiles") -> Warehouse:
        resource = warehouse_for(self.connection(schema))
        return self.adapt(resource) if self.adapt else resource


def _postgres() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.postgres import postgres_server

    started = time.perf_counter()
    with postgres_server() as server:
        target = server.target("warehouse")
        yield Engine("postgres", target, time.perf_counter() - started, notes={"server": server})


def _redshift() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.postgres import postgres_server
    from profiles_dagster_tests.standins.redshift import redshift_proxy

    started = time.perf_counter()
    # password auth: the connector's SCRAM parsing breaks on Postgres 15's SCRAM exchange
    # Redshift reads backslash escapes in string literals (sqlglot writes 'it\'s' for it)
    settings = {"standard_conforming_strings": "off", "escape_string_warning": "off"}
    with postgres_server(auth="password", settings=settings) as server:
        server.create_database("dev")
        with redshift_proxy(server, "dev") as proxy:
            target = {
                "type": "redshift", "host": "127.0.0.1", "port": proxy.port, "dbname": "dev",
                "user": server.user, "password": server.password, "sslmode": "disable",
            }  # fmt: skip
            yield Engine("redshift", target, time.perf_counter() - started, notes={"server": server})


def _snowflake() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.snowflake import fakesnow_server

    started = time.perf_counter()
    with fakesnow_server() as port:
        target = {
            "type": "snowflake", "account": "standin", "user": "profiles", "password": "secret",
            "role": "transformer", "warehouse": "compute_wh", "dbname": "analytics",
            "host": "127.0.0.1", "port": port, "protocol": "http",
        }  # fmt: skip
        # fakesnow's server sends NULL timestamps to the connector as 1970-01-01 (IS NULL is still true)
        yield Engine("snowflake", target, time.perf_counter() - started, notes={"null_timestamps_read_as_epoch": True})


def _bigquery() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.bigquery import PROJECT, bqemulator

    started = time.perf_counter()
    with bqemulator() as port:
        target = {
            "type": "bigquery",
            "project_id": PROJECT,
            "api_endpoint": f"http://127.0.0.1:{port}",
            "anonymous": True,
        }
        yield Engine("bigquery", target, time.perf_counter() - started)


def _databricks() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.databricks import StandinDatabricksWarehouse, spark_server

    started = time.perf_counter()
    with spark_server() as port:
        target = {
            "type": "databricks", "host": "dbc-standin.cloud.databricks.com", "port": 443,
            "http_endpoint": "/sql/1.0/warehouses/standin", "access_token": "dapi-standin",
        }  # fmt: skip

        def adapt(resource: Warehouse) -> Warehouse:
            return StandinDatabricksWarehouse(**resource.model_dump(), standin_port=port)

        yield Engine("databricks", target, time.perf_counter() - started, adapt=adapt)


_STARTERS: dict[str, Callable[[], Iterator[Engine]]] = {
    "databricks": _databricks,
    "bigquery": _bigquery,
    "postgres": _postgres,
    "redshift": _redshift,
    "snowflake": _snowflake,
}


@pytest.fixture(scope="session")
def postgres_standin():
    """One Postgres 15 server for the tests that need a real server but not every engine (secrets, lock)."""
    from profiles_dagster_tests.standins.postgres import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session", params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    starter = _STARTERS.get(request.param)
    if starter is None:
        pytest.fail(f"no stand-in for {request.param} yet")
    yield from starter()
