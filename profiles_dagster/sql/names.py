"""Names of the tables and views a run writes, as pb names them."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

MATERIAL_PREFIX = "Material_"


def material_name(model_name: str, content_hash: str, seq_no: int) -> str:
    return f"{MATERIAL_PREFIX}{model_name}_{content_hash}_{seq_no}"


def table(name: str, schema: str | None = None, catalog: str | None = None) -> exp.Table:
    """A fully quoted table reference: names from YAML are never trusted to be safe identifiers."""
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
        catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
    )


def source_table(reference: str, dialect: str) -> exp.Table:
    """An input's `table: schema.name` as pb users write it (quoting kept as written)."""
    return exp.to_table(reference, dialect=dialect)


def input_table(reference: str, dialect: str, schema: str | None, engine: str | None = None) -> exp.Table:
    """Where the warehouse finds an input's `table:`, the one answer the contract check, `validate access`,
    compile and the run share. Unquoted identifiers fold as the project's SQL dialect folds them (upper case
    on Snowflake, lower case on Postgres; DuckDB keeps the case and matches case-blind; quoted ones stay as
    written); an unqualified name is in the connection's schema (the siteconfig output's `schema`), as pb
    resolves it. Every part comes back quoted, so no engine folds it again.

    On an `engine` that folds unquoted names itself (Postgres, Redshift: lower; Snowflake: upper), an
    unquoted name means that engine's folding: `events` written for Snowflake is the table `events` a
    Postgres user created, not "EVENTS"."""
    parsed = exp.to_table(reference, dialect=dialect)
    folding = engine if engine is not None and _folds(engine) else dialect
    if Dialect.get_or_raise(folding).normalization_strategy is not NormalizationStrategy.CASE_INSENSITIVE:
        parsed = normalize_identifiers(parsed, dialect=folding)  # DuckDB keeps a name's case and matches case-blind
    assert isinstance(parsed, exp.Table)
    return table(parsed.name, parsed.db or schema, parsed.catalog or None)


def _folds(dialect: str) -> bool:
    """Whether the engine folds an unquoted identifier's case (to lower or upper)."""
    strategy = Dialect.get_or_raise(dialect).normalization_strategy
    return strategy in (NormalizationStrategy.LOWERCASE, NormalizationStrategy.UPPERCASE)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name)


def col(name: str, table_alias: str | None = None) -> exp.Column:
    return exp.column(ident(name), table=exp.to_identifier(table_alias) if table_alias else None)
