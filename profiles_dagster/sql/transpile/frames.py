"""Snowflake's window frames, for the compiler and the rules alike (no rules here: importing it registers none,
so it changes no rule order)."""

from __future__ import annotations

from sqlglot import exp


def whole_partition_by_default(window: exp.Window) -> None:
    """Snowflake's frame for FIRST_VALUE / LAST_VALUE / NTH_VALUE over an ORDER BY with no frame given: the whole
    partition (ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING; sqlglot's Snowflake parser reads them
    so too), written out where an engine's default frame would end at the current row (LAST_VALUE: each row's
    own value)."""
    if window.args.get("order") is not None and not window.args.get("spec"):
        window.set("spec", exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                          end="UNBOUNDED", end_side="FOLLOWING"))  # fmt: skip
