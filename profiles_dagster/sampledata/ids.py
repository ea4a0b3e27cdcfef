"""Id values for sample data: one pool of profiles shared by every input, each profile's id of a type in a
shape that passes the type's filters (so stitching merges it), and junk values the filters drop."""

from __future__ import annotations

import re
from collections.abc import Callable

from profiles_dagster.project.schema import IdType

# shapes an id can take, tried in order until one passes the type's filters; `k` is the profile, `v` a variant
Shape = Callable[[str, int, int], str]

_EMAIL: Shape = lambda t, k, v: f"user{k:05d}{'.' + str(v) if v else ''}@example.com"  # noqa: E731
_NUMBER: Shape = lambda t, k, v: str(100000 + k * 10 + v)  # noqa: E731
_UUID: Shape = lambda t, k, v: f"{k:08x}-{v:04x}-4{k % 4096:03x}-a{v:03x}-{(k * 7919 + v) % 16**12:012x}"  # noqa: E731
_PREFIXED: Shape = lambda t, k, v: f"{t.lower()}_{k:05d}{'_' + str(v) if v else ''}"  # noqa: E731
_PHONE: Shape = lambda t, k, v: f"+1555{k % 10**6:06d}{v}"  # noqa: E731

# the words real projects exclude, as candidates for junk values (besides the filters' own values)
_JUNK_WORDS = (
    "undefined",
    "null",
    "unknown",
    "none",
    "nil",
    "test",
    "0",
    "-1",
    "anonymous",
    "guest",
    "n/a",
    "nan",
    "test@example.com",
    "noreply@example.com",
    "not an id",
)


def _shapes(id_type: str) -> list[Shape]:
    name = id_type.lower()
    if "mail" in name:
        first = [_EMAIL]
    elif "phone" in name:
        first = [_PHONE]
    elif any(w in name for w in ("anon", "device", "session", "cookie", "token", "uuid", "guid")):
        first = [_UUID]
    elif name.endswith("_id") or name == "id":
        first = [_NUMBER]
    else:
        first = [_PREFIXED]
    return first + [s for s in (_PREFIXED, _NUMBER, _UUID, _EMAIL, _PHONE) if s not in first]


def variants(shape: Shape) -> int:
    """Ids of one type a profile has: devices and sessions several, a user id or an email one."""
    return 2 if shape is _UUID else 1


def passes(id_type: IdType | None, value: str) -> bool:
    """pb's filters on a value: '' never passes, include regexes are anchored, excludes match whole values."""
    if value == "":
        return False
    for f in id_type.filters if id_type else []:
        if f.sql is not None:
            continue  # a filter that reads a table: the sample data cannot know its rows
        hit = _full(f.regex, value) if f.regex is not None else str(f.value) == value
        if hit != (f.type == "include"):
            return False
    return True


def id_shape(type_name: str, id_type: IdType | None) -> Shape:
    """The first shape whose values pass the type's filters (the type's name decides which is tried first)."""
    shapes = _shapes(type_name)
    for shape in shapes:
        if all(passes(id_type, shape(type_name, k, v)) for k in (1, 42) for v in (0, 1)):
            return shape
    return shapes[0]


def junk_values(id_type: IdType | None) -> list[str]:
    """Values the type's filters drop: the values it excludes, words its exclude regexes match, and a value
    its include regexes reject."""
    if id_type is None:
        return []
    junk: list[str] = []
    for f in id_type.filters:
        if f.type == "exclude" and f.value is not None:
            junk.append(str(f.value))
        elif f.regex is not None:
            words = [*_JUNK_WORDS, *re.findall(r"[A-Za-z0-9@._+-]+", f.regex)]
            junk.extend(w for w in words if _full(f.regex, w) == (f.type == "exclude"))
    return [v for v in dict.fromkeys(junk) if v != "" and not passes(id_type, v)][:5]


def _full(regex: str, value: str) -> bool:
    """An anchored match, as pb's filters match; a regex Python cannot read matches nothing."""
    try:
        return re.fullmatch(regex, value) is not None
    except re.error:
        return False
