"""Engine traits: every engine states every fact, and the main id's SHA-1 renders in each engine's form.

Why: the pure layers ask traits instead of engine names, so a missing trait must fail at once, and the
main ids (pb-compatible, compared across engines) must stay byte-identical when the hashing moved into
the dialects.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlglot import exp

from profiles_dagster.sql import dialects
from profiles_dagster.sql.dialects import EngineTraits, dialect_for, traits_of
from profiles_dagster.sql.stitcher import main_id_expression
from profiles_dagster.warehouse import ENGINES

_SALT = "'fe971b24-9572-4005-b22f-351e9c09274d'"
# main_id_expression(a, b) as each engine's dialect rendered it before the hashing became a dialect fix
_MAIN_ID_SQL = {
    "duckdb": f"'rid' || SUBSTRING(SHA1(SUBSTRING(SHA1({_SALT} || a), 1, 32) || b), 1, 32)",
    "postgres": (  # and in the collation that compares it by its bytes (ByteOrderedText)
        f"('rid' || SUBSTRING(ENCODE(DIGEST(SUBSTRING(ENCODE(DIGEST({_SALT} || a, 'sha1'), 'hex') FROM 1 FOR 32)"
        " || b, 'sha1'), 'hex') FROM 1 FOR 32)) COLLATE \"C\""
    ),
    "redshift": f"'rid' || SUBSTRING(SHA(SUBSTRING(SHA({_SALT} || a) FROM 1 FOR 32) || b) FROM 1 FOR 32)",
    "snowflake": f"'rid' || SUBSTRING(SHA1(SUBSTRING(SHA1({_SALT} || a), 1, 32) || b), 1, 32)",
    "bigquery": f"'rid' || SUBSTRING(TO_HEX(SHA1(SUBSTRING(TO_HEX(SHA1({_SALT} || a)), 1, 32) || b)), 1, 32)",
    "databricks": f"'rid' || SUBSTRING(SHA(SUBSTRING(SHA({_SALT} || a), 1, 32) || b), 1, 32)",
}


def test_traits_have_no_defaults() -> None:
    for field in dataclasses.fields(EngineTraits):
        assert field.default is dataclasses.MISSING, field.name
        assert field.default_factory is dataclasses.MISSING, field.name
    with pytest.raises(TypeError):
        EngineTraits()  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_has_complete_traits(name: str) -> None:
    dialect = dialect_for(name)
    traits = dialect.traits
    assert isinstance(traits, EngineTraits)
    assert traits_of(name) is traits is traits_of(dialect)
    for field in dataclasses.fields(EngineTraits):
        assert hasattr(traits, field.name), field.name
    assert traits.scratch_tables in ("temporary", "unlogged", "plain")
    assert callable(traits.sha1_hex)
    # numbering in scan order needs an empty OVER () in the first place
    assert traits.empty_over_numbering or not traits.scan_order_numbering


def test_the_two_row_number_traits_keep_their_engines() -> None:
    scan_order = {n for n in ENGINES if traits_of(n).scan_order_numbering}
    empty_over = {n for n in ENGINES if traits_of(n).empty_over_numbering}
    assert scan_order == {"duckdb", "postgres"}
    assert empty_over == {"duckdb", "postgres", "bigquery"}


@pytest.mark.parametrize("name", ENGINES)
def test_main_id_sha1_renders_each_engines_form(name: str) -> None:
    expression = main_id_expression(exp.column("a"), exp.column("b"))
    assert expression.sql(dialect=dialect_for(name)) == _MAIN_ID_SQL[name]


@pytest.mark.parametrize("name", ENGINES)
def test_byte_ordered_text_is_collated_only_where_the_engine_names_a_collation(name: str) -> None:
    node = exp.select(dialects.ByteOrderedText(this=exp.func("LOWER", dialects.ByteOrderedText(this=exp.column("a")))))
    collation = traits_of(name).byte_order_collation
    rendered = node.sql(dialect=dialect_for(name))
    if collation is None:
        assert "COLLATE" not in rendered.upper() and "BYTE" not in rendered.upper()
    else:  # nested ones too: the fix looks inside the node it rewrites
        assert rendered == f'SELECT (LOWER((a) COLLATE "{collation}")) COLLATE "{collation}"'


def test_sha1_hex_through_a_plain_sqlglot_dialect_is_sha1() -> None:
    node = dialects.Sha1Hex(this=exp.column("a"))
    assert node.sql("duckdb") == "SHA1(a)"
