"""YAML reading that remembers where every key came from, so errors can point at file:line:column."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from profiles_dagster.errors import ProfilesError

KeyPath = tuple[str | int, ...]

# pb's Go parser tolerates trailing tabs and spaces that PyYAML rejects.
_TRAILING_BLANKS = re.compile(r"[ \t]+$", re.MULTILINE)


@dataclass
class YamlDocument:
    """Plain Python data plus a map from key paths to (line, column), both 1-based."""

    path: Path
    data: Any
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    @cached_property
    def lines(self) -> dict[str, int]:
        """The line of every key path, by its printed form (`inputs[0].name`)."""
        return {format_key_path(path): pos[0] for path, pos in self.positions.items()}

    @cached_property
    def columns(self) -> dict[str, int]:
        """The column of every key path, by its printed form."""
        return {format_key_path(path): pos[1] for path, pos in self.positions.items()}

    def locate(self, key_path: KeyPath) -> tuple[int | None, int | None]:
        """The position of key_path, or of its nearest located ancestor."""
        for end in range(len(key_path), -1, -1):
            found = self.positions.get(tuple(key_path[:end]))
            if found:
                return found
        return None, None

    def error(self, message: str, key_path: KeyPath, hint: str | None = None) -> ProfilesError:
        line, column = self.locate(key_path)
        return ProfilesError(
            message,
            file=self.path,
            line=line,
            column=column,
            key=format_key_path(key_path) or None,
            hint=hint,
        )


def format_key_path(key_path: KeyPath) -> str:
    text = ""
    for part in key_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_text(path: Path) -> str:
    """A project file's text; unreadable or non-UTF-8 files become located errors."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfilesError(f"cannot read file: {exc.strerror}", file=path) from exc
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProfilesError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}", file=path, line=line
        ) from None


def read_yaml(path: Path, text: str | None = None) -> YamlDocument:
    """Parse one YAML file; a syntax error becomes a located ProfilesError."""
    if text is None:
        text = read_text(path)
    text = _TRAILING_BLANKS.sub("", text)
    doc = YamlDocument(path=path, data=None)
    try:
        node = _compose(text)
        if node is None:
            doc.positions[()] = (1, 1)  # an empty file: errors about it point at its first line
            return doc
        doc.data = _convert(node, (), doc.positions, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ProfilesError(
            f"invalid YAML: {exc.problem}",
            file=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a control character the YAML reader refuses
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise ProfilesError(f"invalid YAML: {getattr(exc, 'reason', None) or exc}", file=path, line=line) from None
    except RecursionError:
        raise ProfilesError("invalid YAML: nested too deeply", file=path, line=1) from None
    return doc


# libyaml composes a project's files much faster than PyYAML's pure-Python parser; the pure-Python parser
# still reads text it might judge differently (non-printable characters) and words every error, so what is
# accepted and what errors say stay the same
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> yaml.Node | None:
    if _FAST_LOADER is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # parsed again below: PyYAML's message and position
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _convert(node: yaml.Node, key_path: KeyPath, positions: dict, path: Path) -> Any:
    positions[key_path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                where = format_key_path(key_path) or None
                raise ProfilesError(
                    "a mapping key must be a plain value", file=path, line=line, column=column, key=where
                )
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                first = positions[(*key_path, key)][0]
                raise ProfilesError(
                    f"duplicate key '{key}' (first on line {first})",
                    file=path,
                    line=line,
                    column=column,
                    key=format_key_path((*key_path, key)),
                )
            child = (*key_path, key)
            result[key] = _convert(value_node, child, positions, path)
            positions[child] = (line, column)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*key_path, i), positions, path) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar; an unknown tag raises yaml's ConstructorError (a MarkedYAMLError)."""
    # a bare constructor: a whole SafeLoader (reader, scanner, parser) per scalar cost more than the parse
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
