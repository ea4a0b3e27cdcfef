"""The GRANT statements an admin runs so a connection can run a project, in each engine's syntax.

`Grants` is the base: an engine without privileges (DuckDB, a local file) needs none. Each engine's
module subclasses it with its own syntax and says, on its `WarehouseEngine`, who the connection acts as
(`access_grants`), so `access.py` never asks which engine it talks to.
"""

from __future__ import annotations

from sqlglot import exp


def quoted_name(parts: list[str | None], quote: str = '"') -> str:
    """A dotted name for a printed statement, each part quoted only where it is not a plain word."""
    return ".".join(f"{quote}{p}{quote}" if not p.replace("_", "").isalnum() else p for p in parts if p)


class Grants:
    """The statements an admin runs; `principal` is the user or role the connection acts as, `database` its
    database (catalog, project) where the engine has one."""

    def __init__(self, principal: str, database: str | None) -> None:
        self.principal, self.database = principal, database

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        """What lets the principal read `source` (in `schema`)."""
        return ()

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        """What lets the principal create, replace and drop tables and views in `schema` (missing: create it)."""
        return ()
