"""GRANT statements per engine: each engine's module prints what `validate access` printed before the syntax
moved out of access.py (the expected statements below are those of the engine-branching version).

Why: only Postgres has a stand-in test that grants for real; for the other engines these statements are what
an admin copies, so a slip is only seen by a user.
"""

from __future__ import annotations

import pytest
from sqlglot import exp

from profiles_dagster.warehouse.bigquery import BigQueryGrants
from profiles_dagster.warehouse.databricks import DatabricksGrants
from profiles_dagster.warehouse.grants import Grants
from profiles_dagster.warehouse.postgres import PostgresGrants
from profiles_dagster.warehouse.snowflake import SnowflakeGrants

_CLASSES: dict[str, type[Grants]] = {
    "postgres": PostgresGrants,
    "redshift": PostgresGrants,
    "snowflake": SnowflakeGrants,
    "bigquery": BigQueryGrants,
    "databricks": DatabricksGrants,
    "duckdb": Grants,
}

# (engine, principal, database) -> (read of raw.identifies, read of "other db".raw.identifies,
#                                   write to an existing schema, write to a missing one)
EXPECTED = {
    ("bigquery", "serviceAccount:x@y.iam", "my-proj"): (
        ('GRANT `roles/bigquery.dataViewer` ON TABLE `my-proj`.raw.identifies TO "serviceAccount:x@y.iam";',),
        ('GRANT `roles/bigquery.dataViewer` ON TABLE `other db`.raw.identifies TO "serviceAccount:x@y.iam";',),
        (
            'GRANT `roles/bigquery.dataEditor` ON SCHEMA `my-proj`.profiles TO "serviceAccount:x@y.iam";',
            "-- and on the project (gcloud): roles/bigquery.jobUser for serviceAccount:x@y.iam",
        ),
        (
            'GRANT `roles/bigquery.dataEditor` ON SCHEMA `my-proj`.`my schema` TO "serviceAccount:x@y.iam";',
            "-- and on the project (gcloud): roles/bigquery.jobUser for "
            "serviceAccount:x@y.iam; creating dataset my schema needs "
            "roles/bigquery.dataEditor on the project",
        ),
    ),
    ("databricks", "me@x.com", "main"): (
        (
            "GRANT USE CATALOG ON CATALOG main TO `me@x.com`;",
            "GRANT USE SCHEMA ON SCHEMA main.raw TO `me@x.com`;",
            "GRANT SELECT ON TABLE main.raw.identifies TO `me@x.com`;",
        ),
        (
            "GRANT USE CATALOG ON CATALOG `other db` TO `me@x.com`;",
            "GRANT USE SCHEMA ON SCHEMA `other db`.raw TO `me@x.com`;",
            "GRANT SELECT ON TABLE `other db`.raw.identifies TO `me@x.com`;",
        ),
        ("GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA main.profiles TO `me@x.com`;",),
        (
            "GRANT CREATE SCHEMA ON CATALOG main TO `me@x.com`;",
            "GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA main.`my schema` TO `me@x.com`;",
        ),
    ),
    ("databricks", "me@x.com", None): (
        ("", "GRANT USE SCHEMA ON SCHEMA raw TO `me@x.com`;", "GRANT SELECT ON TABLE raw.identifies TO `me@x.com`;"),
        (
            "GRANT USE CATALOG ON CATALOG `other db` TO `me@x.com`;",
            "GRANT USE SCHEMA ON SCHEMA `other db`.raw TO `me@x.com`;",
            "GRANT SELECT ON TABLE `other db`.raw.identifies TO `me@x.com`;",
        ),
        ("GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA profiles TO `me@x.com`;",),
        (
            "GRANT CREATE SCHEMA ON CATALOG  TO `me@x.com`;",
            "GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA `my schema` TO `me@x.com`;",
        ),
    ),
    ("duckdb", "<user>", None): ((), (), (), ()),
    ("postgres", "alice", "analytics"): (
        ("GRANT USAGE ON SCHEMA raw TO alice;", "GRANT SELECT ON raw.identifies TO alice;"),
        ("GRANT USAGE ON SCHEMA raw TO alice;", "GRANT SELECT ON raw.identifies TO alice;"),
        ("GRANT USAGE, CREATE ON SCHEMA profiles TO alice;",),
        ('CREATE SCHEMA IF NOT EXISTS "my schema" AUTHORIZATION alice;',),
    ),
    ("redshift", "bob", None): (
        ("GRANT USAGE ON SCHEMA raw TO bob;", "GRANT SELECT ON raw.identifies TO bob;"),
        ("GRANT USAGE ON SCHEMA raw TO bob;", "GRANT SELECT ON raw.identifies TO bob;"),
        ("GRANT USAGE, CREATE ON SCHEMA profiles TO bob;",),
        ('CREATE SCHEMA IF NOT EXISTS "my schema" AUTHORIZATION bob;',),
    ),
    ("snowflake", "PROFILES_ROLE", "ANALYTICS"): (
        (
            "GRANT USAGE ON DATABASE ANALYTICS TO ROLE PROFILES_ROLE;",
            "GRANT USAGE ON SCHEMA ANALYTICS.raw TO ROLE PROFILES_ROLE;",
            "GRANT SELECT ON ALL TABLES IN SCHEMA ANALYTICS.raw TO ROLE PROFILES_ROLE;",
            "GRANT SELECT ON ALL VIEWS IN SCHEMA ANALYTICS.raw TO ROLE PROFILES_ROLE;",
        ),
        (
            'GRANT USAGE ON DATABASE "other db" TO ROLE PROFILES_ROLE;',
            'GRANT USAGE ON SCHEMA "other db".raw TO ROLE PROFILES_ROLE;',
            'GRANT SELECT ON ALL TABLES IN SCHEMA "other db".raw TO ROLE PROFILES_ROLE;',
            'GRANT SELECT ON ALL VIEWS IN SCHEMA "other db".raw TO ROLE PROFILES_ROLE;',
        ),
        (
            "GRANT USAGE ON DATABASE ANALYTICS TO ROLE PROFILES_ROLE;",
            "GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA ANALYTICS.profiles TO ROLE PROFILES_ROLE;",
        ),
        (
            "GRANT USAGE ON DATABASE ANALYTICS TO ROLE PROFILES_ROLE;",
            "GRANT CREATE SCHEMA ON DATABASE ANALYTICS TO ROLE PROFILES_ROLE;",
            'GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA ANALYTICS."my schema" TO ROLE PROFILES_ROLE;',
        ),
    ),
}


@pytest.mark.parametrize("case", list(EXPECTED), ids=lambda c: f"{c[0]}-{c[2]}")
def test_grants_as_before(case: tuple[str, str, str | None]) -> None:
    kind, principal, database = case
    grants = _CLASSES[kind](principal, database)
    plain = exp.table_("identifies", db="raw")
    in_catalog = exp.table_("identifies", db="raw", catalog="other db")
    got = (
        grants.read(plain, "raw"),
        grants.read(in_catalog, "raw"),
        grants.write("profiles", True),
        grants.write("my schema", False),
    )
    assert got == EXPECTED[case]
