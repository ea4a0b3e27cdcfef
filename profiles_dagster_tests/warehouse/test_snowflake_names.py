"""Snowflake finds a `DB.SCHEMA.TABLE` in that database's information_schema, never a table of the same
schema and name in another database (the contract check and the run ask `table_exists`/`columns`).

Against the fakesnow stand-in with the real snowflake connector; it fails, never skips, if it cannot start.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from profiles_dagster.sql.names import input_table
from profiles_dagster_tests.standins.fixtures import Engine


@pytest.fixture(scope="module")
def snowflake() -> Iterator[Engine]:
    from profiles_dagster_tests.standins.fixtures import _snowflake

    yield from _snowflake()


def test_a_three_part_name_is_looked_up_in_its_own_database(snowflake: Engine) -> None:
    warehouse = snowflake.warehouse("names")
    with warehouse.session() as session:
        session.execute("CREATE DATABASE IF NOT EXISTS SHOP")
        session.execute("CREATE SCHEMA IF NOT EXISTS SHOP.RAW")
        session.execute("CREATE OR REPLACE TABLE SHOP.RAW.ORDERS (USER_ID VARCHAR, AMOUNT NUMBER(10, 2))")
        shop = input_table("shop.raw.orders", "snowflake", "names", "snowflake")
        elsewhere = input_table("crm.raw.orders", "snowflake", "names", "snowflake")
        assert session.table_exists(shop)
        assert not session.table_exists(elsewhere)  # same schema and name, another database: not there
        assert [name for name, _ in session.columns(shop)] == ["user_id", "amount"]
        assert session.columns(elsewhere) == []
