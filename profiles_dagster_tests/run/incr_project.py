"""A small append-only project for the incremental-run tests, and its data, written by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

PB_PROJECT = """\
name: incr_test
schema_version: 99
connection: test
model_folders:
  - models
entities:
  - name: user
    id_types:
      - user_id
      - anon_id
    feature_views:
      using_ids:
        - id: user_id
          name: users_by_user_id
id_types:
  - name: user_id
  - name: anon_id
"""

INPUTS = """\
inputs:
  - name: events
    contract:
      is_append_only: true
      is_event_stream: true
    app_defaults:
      table: raw.events
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: anon_id
          type: anon_id
          entity: user
"""

PROFILES = """\
models:
  - name: daily_buys
    model_type: sql_template
    model_spec:
      materialization:
        output_type: table
        run_type: discrete
      occurred_at_col: day
      ids:
        - select: user_id
          type: user_id
          entity: user
      single_sql: |
        {% with events = this.DeRef("inputs/events") %}
        select user_id, cast(ts as date) as day, count(*) as buys
        from {{ events }}
        where kind = 'buy' and user_id is not null
        group by user_id, cast(ts as date)
        {% endwith %}
  - name: big
    model_type: entity_cohort
    model_spec:
      extends: user/all
      materialization:
        output_type: table
      filter_pipeline:
        - type: include
          value: "{{ user.Var('revenue') }} >= 100"
var_groups:
  - name: activity
    entity_key: user
    vars:
      - input_var:
          name: event_no
          select: row_number()
          from: inputs/events
          window:
            partition_by:
              - user_main_id
            order_by:
              - ts
      - entity_var:
          name: n_events
          select: count(*)
          from: inputs/events
          default_value: 0
      - entity_var:
          name: revenue
          select: sum(amount)
          from: inputs/events
          where: kind = 'buy'
          default_value: 0
      - entity_var:
          name: first_ts
          select: min(ts)
          from: inputs/events
      - entity_var:
          name: last_ts
          select: max(ts)
          from: inputs/events
      - entity_var:
          name: kinds
          select: count(distinct kind)
          from: inputs/events
      - entity_var:
          name: median_amount
          select: median(amount)
          from: inputs/events
      - entity_var:
          name: first_amount
          select: max(amount)
          from: inputs/events
          where: "{{ events.Var('event_no') }} = 1"
      - entity_var:
          name: buy_days
          select: count(distinct day)
          from: models/daily_buys
      - entity_var:
          name: days_since_last
          select: date_diff('day', cast({{ user.Var('last_ts') }} as date), cast({{ end_time_sql }} as date))
      - entity_var:
          name: revenue_rank
          select: rank()
          window:
            order_by:
              - "{{ user.Var('revenue') }} desc"
  - name: big_vars
    entity_cohort: models/big
    vars:
      - entity_var:
          name: big_orders
          select: count(*)
          from: inputs/events
          where: kind = 'buy'
"""

STABLE_VIEWS = (
    "user_default_id_stitcher",
    "user_all",
    "user_feature_view",
    "users_by_user_id",
    "user_big",
    "big_feature_view",
    "big_feature_view_with_user_id",
    "daily_buys",
)


def write_project(folder: Path, database: Path) -> tuple[Path, Path]:
    """The project folder and its siteconfig (one DuckDB target at `database`)."""
    root = folder / "project"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "pb_project.yaml").write_text(PB_PROJECT, encoding="utf-8")
    (root / "models" / "inputs.yaml").write_text(INPUTS, encoding="utf-8")
    (root / "models" / "profiles.yaml").write_text(PROFILES, encoding="utf-8")
    site = folder / "siteconfig.yaml"
    site.write_text(
        "connections:\n  test:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
        f"        path: {database}\n        schema: profiles\n",
        encoding="utf-8",
    )
    return root, site


Row = tuple[datetime | None, str | None, str | None, float | None, str]


def add_events(database: Path, rows: list[Row]) -> None:
    """Append rows (ts, user_id, anon_id, amount, kind) to raw.events, creating it."""
    con = duckdb.connect(str(database))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            "CREATE TABLE IF NOT EXISTS raw.events (ts TIMESTAMP, user_id VARCHAR, anon_id VARCHAR, "
            "amount DOUBLE, kind VARCHAR)"
        )
        if rows:
            con.executemany("INSERT INTO raw.events VALUES (?, ?, ?, ?, ?)", rows)
    finally:
        con.close()
