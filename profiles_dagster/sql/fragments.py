"""User SQL fragments (selects, wheres, filters) parsed in the project's dialect into sqlglot trees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.model import Origin
from profiles_dagster.sql.transpile.spark_timestampdiff import parse_reader

VAR_PREFIX = "__pdvar__"  # var references render to this identifier prefix, then get rebound


@dataclass(frozen=True)
class Where:
    """Where a fragment came from, for errors that name the var and the file."""

    origin: Origin | None
    what: str

    def error(self, message: str) -> ProfilesError:
        if self.origin is None:
            return ProfilesError(f"{self.what}: {message}")
        return ProfilesError(
            message, file=self.origin.file, line=self.origin.line, column=self.origin.column, key=self.what
        )


def parse_expression(text: str, dialect: str, where: Where) -> exp.Expr:
    try:
        parsed: exp.Expr = sqlglot.parse_one(text, read=parse_reader(dialect), into=exp.Condition)
    except sqlglot.errors.ParseError as exc:
        try:
            parsed = sqlglot.parse_one(text, read=parse_reader(dialect))
        except sqlglot.errors.ParseError:
            raise where.error(f"cannot parse SQL `{text.strip()}` as {dialect}: {_first_error(exc)}") from None
    if parsed is None:
        raise where.error("empty SQL expression")
    return parsed


def parse_query(text: str, dialect: str, where: Where) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, read=parse_reader(dialect)) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise where.error(f"cannot parse SQL as {dialect}: {_first_error(exc)}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise where.error("single_sql must be exactly one SELECT query")
    return statements[0]


def parse_statements(text: str, dialect: str, where: Where) -> list[exp.Expr]:
    try:
        statements = [s for s in sqlglot.parse(text, read=parse_reader(dialect)) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise where.error(f"cannot parse SQL as {dialect}: {_first_error(exc)}") from None
    if not statements:
        raise where.error("multi_sql has no statements")
    return statements


def _first_error(exc: sqlglot.errors.ParseError) -> str:
    if exc.errors:
        err = exc.errors[0]
        return f"{err.get('description')} near line {err.get('line')}, column {err.get('col')}"
    return str(exc)


def var_placeholder(name: str) -> str:
    return f"{VAR_PREFIX}{name}"


def bind_vars(tree: exp.Expr, column_for: Callable[[str], exp.Expr]) -> exp.Expr:
    """Replace var placeholders with the column that holds each var."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.startswith(VAR_PREFIX) and not node.table:
            return column_for(node.name[len(VAR_PREFIX) :])
        return node

    return tree.transform(swap)


def literal_for(value: object) -> exp.Expr:
    """A YAML default_value as SQL: numbers and booleans as literals, strings as SQL or text."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    text = str(value)
    try:
        parsed = sqlglot.parse_one(text)
    except sqlglot.errors.ParseError:
        return exp.Literal.string(text)
    if isinstance(parsed, exp.Column):
        return exp.Literal.string(text)  # a bare word is text, not a column reference
    return parsed
