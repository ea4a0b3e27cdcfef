"""What pongo2's operators, filters and output do, as Python functions the translated templates call.

Each follows pongo2's Go code (value.go, parser_expression.go, filters_builtin.go) rather than
Python's habits: `!3` is `0`, `1 == 1.0` is false, `"10" < "9"` compares numbers, a float prints as
`%f`, nil prints as nothing. A case pongo2 would answer with Go's own formatting quirks that are not
reproduced here raises instead of answering differently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jinja2

from profiles_dagster.project.pongo2 import FILTERS


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _undefined(value: Any) -> bool:
    return isinstance(value, jinja2.Undefined)


def to_string(value: Any) -> str:
    """pongo2's Value.String(): nil is empty, a bool is True/False, a float is `%f`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if _is_float(value):
        return f"{value:f}"
    return str(value)


def finalize(value: Any) -> Any:
    """Jinja2's hook on every `{{ }}` output; an undefined value stays one so that it raises."""
    return value if _undefined(value) else to_string(value)


def _integer(value: Any) -> int:
    if _is_int(value):
        return int(value)
    if _is_float(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def _float(value: Any) -> float:
    if _is_int(value) or _is_float(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def pb_bool(value: Any) -> bool:
    """pongo2's IsTrue: numbers not zero, non-empty strings and collections, true, any object."""
    if value is None:
        return False
    return bool(value)


def pb_not(value: Any) -> Any:
    """pongo2's Negate, which keeps the kind of a number (`!3` is 0, `!0.0` is 1.1)."""
    if isinstance(value, bool):
        return not value
    if _is_int(value):
        return 0 if value != 0 else 1
    if _is_float(value):
        return 0.0 if value != 0.0 else 1.1
    if isinstance(value, str | Sequence | Mapping):
        return len(value) == 0
    if value is None:
        return True
    if _undefined(value):
        return not bool(value)  # a strict undefined raises here
    return False  # an object


def pb_eq(left: Any, right: Any) -> bool:
    """pongo2's EqualValueTo: integers by value, everything else only when of one type and equal."""
    if _is_int(left) and _is_int(right):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):  # Go strings, whatever Python class holds them
        return str(left) == str(right)
    if _undefined(left) or _undefined(right):
        return bool(left == right)  # a strict undefined raises here
    return type(left) is type(right) and bool(left == right)


def pb_compare(op: str, left: Any, right: Any) -> bool:
    """`<`, `>`, `<=`, `>=` on numbers: as floats when either side is one, else as integers."""
    if _undefined(left) or _undefined(right):
        str(left), str(right)  # a strict undefined raises here
    a: float | int
    b: float | int
    if _is_float(left) or _is_float(right):
        a, b = _float(left), _float(right)
    else:
        a, b = _integer(left), _integer(right)
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def pb_contains(container: Any, item: Any) -> bool:
    """`item in container`: a substring, a key of a map (int or string keys), an element of a list."""
    if isinstance(container, str):
        return to_string(item) in container
    if isinstance(container, Mapping):
        return (_is_int(item) or isinstance(item, str)) and item in container
    if isinstance(container, list | tuple):
        return any(pb_eq(item, element) and type(item) is type(element) for element in container)
    if _undefined(container):
        return bool(container)  # a strict undefined raises here
    return False


def pb_unknown(name: str) -> Any:
    """A name Jinja2 would read as a literal (`True`, `None`): pongo2 looks it up, and pb knows no such name."""
    raise jinja2.UndefinedError(f"{name!r} is undefined")


def pb_negative(value: Any) -> Any:
    if _is_int(value) or _is_float(value):
        return -value
    raise ValueError("negative sign on a non-number expression")


def pb_arith(op: str, left: Any, right: Any) -> Any:
    """`+ - * / % ^`: floats when either side is one, else integers (Go's division truncates)."""
    if op == "^":
        return math.pow(_float(left), _float(right))
    if op != "%" and (_is_float(left) or _is_float(right)):
        a, b = _float(left), _float(right)
        if op == "/" and b == 0:
            raise ValueError("division by zero")
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]
    i, j = _integer(left), _integer(right)
    if op in ("/", "%"):
        if j == 0:
            raise ValueError("division by zero")
        quotient = abs(i) // abs(j) * (1 if (i >= 0) == (j >= 0) else -1)
        return quotient if op == "/" else i - j * quotient
    return {"+": i + j, "-": i - j, "*": i * j}[op]


def _sort_key(value: Any) -> tuple[int, Any]:
    # pongo2 sorts integers with integers, floats with floats, anything else by its string
    if _is_int(value):
        return (0, value)
    if _is_float(value):
        return (1, value)
    return (2, to_string(value))


def pb_iter(seq: Any, reverse: bool = False, ordered: bool = False) -> list[Any]:
    """What `{% for x in seq %}` visits: a list's items, a map's keys (sorted), a string's characters."""
    if _undefined(seq):
        iter(seq)  # a strict undefined raises here
    if isinstance(seq, Mapping):
        return sorted(seq, key=_sort_key, reverse=reverse)
    if isinstance(seq, list | tuple | str):
        items = list(seq)
        if ordered:
            return sorted(items, key=_sort_key, reverse=reverse)
        return items[::-1] if reverse else items
    return []


def pb_items(seq: Any, reverse: bool = False, ordered: bool = False) -> Iterator[tuple[Any, Any]]:
    """`{% for k, v in map %}`: keys in sorted order (Go's own order is random); a list gives (item, nil)."""
    for key in pb_iter(seq, reverse, ordered):
        yield (key, seq[key]) if isinstance(seq, Mapping) else (key, None)


class ForLoop:
    """pongo2's `forloop`: Counter, Counter0, Revcounter, Revcounter0, First, Last."""

    def __init__(self, loop: Any) -> None:
        self.Counter = loop.index
        self.Counter0 = loop.index0
        self.Revcounter = loop.revindex
        self.Revcounter0 = loop.revindex0
        self.First = loop.first
        self.Last = loop.last


# filters: pongo2's meaning (filters_builtin.go), and pb's isnil


def _isnil(value: Any) -> bool:
    return value is None or _undefined(value)


def _default(value: Any, fallback: Any = None) -> Any:
    return fallback if _isnil(value) or not pb_bool(value) else value


def _default_if_none(value: Any, fallback: Any = None) -> Any:
    return fallback if _isnil(value) else value


def _length(value: Any) -> int:
    if isinstance(value, str | Sequence | Mapping):
        return len(value)
    if _undefined(value):
        len(value)  # a strict undefined raises here
    return 0


def _join(value: Any, sep: Any = None) -> Any:
    if not isinstance(value, str | list | tuple):
        return value
    return to_string(sep).join(to_string(item) for item in value)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, str | list | tuple) and value else ""


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, str | list | tuple) and value else ""


def _add(value: Any, other: Any = None) -> Any:
    numbers = (_is_int(value) or _is_float(value)) and (_is_int(other) or _is_float(other))
    if numbers:
        return pb_arith("+", value, other)
    return to_string(value) + to_string(other)


def _cut(value: Any, part: Any = None) -> str:
    return to_string(value).replace(to_string(part), "") if to_string(part) else to_string(value)


_GO_VERB = re.compile(r"%([-+ 0#]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _stringformat(value: Any, layout: Any = None) -> str:
    """Go's fmt.Sprintf(layout, value) for the verbs whose output Python writes the same way."""

    def verb(match: re.Match[str]) -> str:
        flags, width, precision, kind = match.groups()
        spec = "%" + flags + (width or "") + (f".{precision}" if precision is not None else "")
        if kind == "%":
            return "%"
        if kind in "dxXo" and _is_int(value):
            return (spec + kind) % value
        if kind in "feEgG" and _is_float(value) and (kind not in "gG" or precision is not None):
            return (spec + kind) % value
        if kind in "sv" and isinstance(value, str):
            return (spec + "s") % value
        if kind == "v" and _is_int(value):
            return (spec + "d") % value
        raise ValueError(f"stringformat: Go's %{kind} of {type(value).__name__} {value!r} is not reproduced here")

    return _GO_VERB.sub(verb, to_string(layout))


_FILTER_FUNCTIONS: dict[str, Any] = {
    "isnil": _isnil,
    "default": _default,
    "default_if_none": _default_if_none,
    "length": _length,
    "lower": lambda value: to_string(value).lower(),
    "upper": lambda value: to_string(value).upper(),
    "join": _join,
    "safe": lambda value: value,
    "stringformat": _stringformat,
    "first": _first,
    "last": _last,
    "add": _add,
    "cut": _cut,
    "integer": _integer,
    "float": _float,
}
assert set(_FILTER_FUNCTIONS) == FILTERS, "every filter the translation accepts has a meaning here"


def install(env: jinja2.Environment) -> None:
    """Make a Jinja2 environment render translated templates: helpers, filters, pongo2's output."""
    env.globals.update(
        pb_bool=pb_bool,
        pb_not=pb_not,
        pb_eq=pb_eq,
        pb_compare=pb_compare,
        pb_contains=pb_contains,
        pb_negative=pb_negative,
        pb_unknown=pb_unknown,
        pb_arith=pb_arith,
        pb_iter=pb_iter,
        pb_items=pb_items,
        pb_forloop=ForLoop,
    )
    env.globals.update({f"pb_filter_{name}": function for name, function in _FILTER_FUNCTIONS.items()})
    env.finalize = finalize
