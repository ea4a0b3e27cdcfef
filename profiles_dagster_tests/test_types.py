"""The static type check runs with the tests, so CI runs it: targets and strictness are pyproject.toml's [tool.mypy]."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # mypy reads its config and its `files` relative to the repo root
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
