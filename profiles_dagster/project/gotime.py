"""pb's templates see times as Go values: `{{ end_time.Format("2006-01-02 15:04:05") }}`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

# Go's reference-time layout tokens, longest first so "2006" wins over "06" and "January" over "Jan".
_GO_TOKENS: dict[str, Callable[[datetime], str]] = {
    "January": lambda v: v.strftime("%B"),
    "Monday": lambda v: v.strftime("%A"),
    "2006": lambda v: f"{v.year:04d}",
    "Jan": lambda v: v.strftime("%b"),
    "Mon": lambda v: v.strftime("%a"),
    "MST": lambda v: "UTC",
    "Z07:00": lambda v: "Z",
    "-07:00": lambda v: "+00:00",
    "-0700": lambda v: "+0000",
    ".000000": lambda v: f".{v.microsecond:06d}",
    ".000": lambda v: f".{v.microsecond // 1000:03d}",
    "01": lambda v: f"{v.month:02d}",
    "02": lambda v: f"{v.day:02d}",
    "_2": lambda v: f"{v.day:>2}",
    "15": lambda v: f"{v.hour:02d}",
    "03": lambda v: f"{(v.hour % 12) or 12:02d}",
    "04": lambda v: f"{v.minute:02d}",
    "05": lambda v: f"{v.second:02d}",
    "06": lambda v: f"{v.year % 100:02d}",
    "PM": lambda v: "PM" if v.hour >= 12 else "AM",
    "pm": lambda v: "pm" if v.hour >= 12 else "am",
    "1": lambda v: str(v.month),
    "2": lambda v: str(v.day),
    "3": lambda v: str((v.hour % 12) or 12),
    "4": lambda v: str(v.minute),
    "5": lambda v: str(v.second),
}
_PATTERN = re.compile("|".join(re.escape(token) for token in _GO_TOKENS))


class GoTime:
    """A naive UTC datetime that formats with Go layouts and prints as pb prints times."""

    def __init__(self, value: datetime) -> None:
        self.value = value

    def Format(self, layout: str) -> str:  # noqa: N802 - pb's (Go's) spelling
        return _PATTERN.sub(lambda m: _GO_TOKENS[m.group(0)](self.value), layout)

    def Unix(self) -> int:  # noqa: N802 - Go's spelling
        return int(self.value.replace(tzinfo=UTC).timestamp())

    def __str__(self) -> str:
        return self.value.strftime("%Y-%m-%d %H:%M:%S")
