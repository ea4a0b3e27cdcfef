"""Write small Profiles projects into a temporary folder for loader, plan and siteconfig tests.

Each file is given as YAML text (written verbatim, so tests can assert line numbers) or as a
dict (dumped in key order). The defaults make a minimal valid project: entity `user` with ids
`user_id` and `anonymous_id`, one input `tracks`, no models, a DuckDB siteconfig.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import yaml

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "example_project"

PB_PROJECT = """\
name: test_project
schema_version: 99
connection: test
model_folders:
  - models
entities:
  - name: user
    id_types:
      - user_id
      - anonymous_id
id_types:
  - name: user_id
  - name: anonymous_id
"""

INPUTS = """\
inputs:
  - name: tracks
    app_defaults:
      table: raw.tracks
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: anonymous_id
          type: anonymous_id
          entity: user
"""

SITECONFIG = """\
connections:
  test:
    target: dev
    outputs:
      dev:
        type: duckdb
        path: test.duckdb
        schema: profiles
"""

Content = str | dict[str, Any] | None


def _text(content: str | dict[str, Any]) -> str:
    if isinstance(content, str):
        return content
    return yaml.safe_dump(content, sort_keys=False)


def write_file(path: Path, content: str | dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_text(content), encoding="utf-8")
    return path


def write_project(
    root: Path,
    *,
    project: Content = PB_PROJECT,
    models: dict[str, Content] | None = None,
    siteconfig: Content = SITECONFIG,
) -> Path:
    """Write pb_project.yaml, models/<name> for each entry and siteconfig.yaml; return `root`.

    `models` defaults to `{"inputs.yaml": INPUTS}`; a None value (or project/siteconfig None)
    leaves that file out.
    """
    root.mkdir(parents=True, exist_ok=True)
    if project is not None:
        write_file(root / "pb_project.yaml", project)
    (root / "models").mkdir(exist_ok=True)
    for name, content in ({"inputs.yaml": INPUTS} if models is None else models).items():
        if content is not None:
            write_file(root / "models" / name, content)
    if siteconfig is not None:
        write_file(root / "siteconfig.yaml", siteconfig)
    return root


def copy_example(root: Path) -> Path:
    """A private copy of example_project's YAML (no data, no database) to edit in a test."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pb_project.yaml", "siteconfig.yaml"):
        shutil.copy(EXAMPLE_PROJECT / name, root / name)
    shutil.copytree(EXAMPLE_PROJECT / "models", root / "models")
    return root


def dedent(text: str) -> str:
    """textwrap.dedent without the leading newline, for YAML written inside a test."""
    return textwrap.dedent(text).lstrip("\n")
