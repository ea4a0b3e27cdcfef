"""Run a small Profiles project written inline on a fresh DuckDB file and read back its outputs."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb

from profiles_dagster.cli import main

END_TIME = "2025-06-01T00:00:00Z"

SITECONFIG = """\
connections:
  test:
    target: dev
    outputs:
      dev:
        type: duckdb
        path: warehouse.duckdb
        schema: out
"""


@dataclass
class Outputs:
    database: Path

    def rows(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def columns(self, relation: str) -> list[str]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return [d[0] for d in con.execute(f"select * from {relation} limit 0").description]
        finally:
            con.close()

    def by_key(self, relation: str, key: str = "user_main_id") -> dict[object, dict[str, object]]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            cur = con.execute(f"select * from {relation}")
            names = [d[0] for d in cur.description]
            return {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
        finally:
            con.close()

    def main_id_of(self, other_id: str, other_id_type: str, view: str = "out.user_default_id_stitcher") -> str:
        (row,) = self.rows(f"select * from {view} where other_id = '{other_id}' and other_id_type = '{other_id_type}'")
        return row[0]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    if "siteconfig.yaml" not in files:
        (root / "siteconfig.yaml").write_text(SITECONFIG, encoding="utf-8")
    return root


def run_project(root: Path, files: dict[str, str], seed: list[str], *, end_time: str = END_TIME) -> Outputs:
    """Write the project, seed its input tables, run it with the CLI; fail with the CLI's error."""
    write(root, files)
    database = root / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema if not exists raw")
    for statement in seed:
        con.execute(statement)
    con.close()
    code = main(["run", "-p", str(root), "--end_time", end_time])
    assert code == 0, "the project did not run; see stderr above"
    return Outputs(database)
