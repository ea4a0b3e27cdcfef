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


MAX_ERRORS = 50


class ProfilesErrors(ProfilesError):  # noqa: N818 (a list of ProfilesError)
    """Several independent problems found in one pass (`validate` reports them all, not one per rerun).

    Still a `ProfilesError`: callers catch one type. Its first error is its own message, file and line, so
    a single problem reads exactly as it always did; `str` lists them all."""

    def __init__(self, errors: list[ProfilesError], *, truncated: int = 0) -> None:
        assert errors, "ProfilesErrors needs at least one error"
        self.errors = list(errors)
        self.truncated = truncated  # how many more were found beyond the cap
        first = errors[0]
        super().__init__(
            first.message, file=first.file, line=first.line, column=first.column, key=first.key, hint=first.hint
        )

    def render(self) -> str:
        if len(self.errors) == 1 and not self.truncated:
            return self.errors[0].render()
        lines = [e.render() for e in self.errors]
        if self.truncated:
            lines.append(f"... and {self.truncated} more (only the first {len(self.errors)} are listed)")
        return "\n".join(lines)

    @property
    def count(self) -> int:
        return len(self.errors) + self.truncated


class ErrorCollector:
    """Collects the errors of independent items (an input, a model, a var, a file) so one bad item does not
    hide the others; `failed` names the items that failed, so what depends on them is skipped, not reported
    a second time."""

    def __init__(self, cap: int = MAX_ERRORS) -> None:
        self.cap = cap
        self.errors: list[ProfilesError] = []
        self.truncated = 0
        self.failed: set[str] = set()

    def add(self, error: ProfilesError, item: str | None = None) -> None:
        if item is not None:
            self.failed.add(item)
        for err in error.errors if isinstance(error, ProfilesErrors) else [error]:
            if any(err.render() == seen.render() for seen in self.errors):
                continue  # the same problem met again through another step
            if len(self.errors) < self.cap:
                self.errors.append(err)
            else:
                self.truncated += 1
        if isinstance(error, ProfilesErrors):
            self.truncated += error.truncated

    def item(self, name: str | None = None) -> _Item:
        """`with errors.item("inputs/x"):` runs one item's checks; its error is kept and the item marked failed."""
        return _Item(self, name)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ProfilesErrors(self.errors, truncated=self.truncated)


class FailedDependencyError(Exception):
    """An item reads one that already failed: its own check would only repeat that error."""


class _Item:
    def __init__(self, collector: ErrorCollector, name: str | None) -> None:
        self.collector = collector
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, FailedDependencyError):
            if self.name is not None:
                self.collector.failed.add(self.name)
            return True
        if isinstance(exc, ProfilesError) and not isinstance(exc, BusyError):
            self.collector.add(exc, self.name)
            return True
        return False
