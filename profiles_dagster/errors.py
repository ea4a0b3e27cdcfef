"""The one error class users see: every message says where (file, line, key) and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class ProfilesError(Exception):
    """A problem in a Profiles project, its configuration or its run, located for the user."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.key = key
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{key}{self.message}{hint}"


class BusyError(ProfilesError):
    """Another run or process holds the output schema (or the DuckDB file); trying again later can work."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' suggestion, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    match = closest(name, choices)
    return f"did you mean '{match}'?" if match else None


def summary(exc: BaseException, *, named: bool = False) -> str:
    """An exception in one line for a message or a registry row: drivers put a whole server trace after it.

    `named` prefixes the type (`KeyError: ...`), for our own bugs where the message alone says little."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if named else lines[0]
