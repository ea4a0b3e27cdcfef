"""benchmarks/corpus.py: each project of a folder tried in capped processes, one table row each."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from profiles_dagster_tests.projects import INPUTS, PB_PROJECT, dedent, write_project

CORPUS_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus.py"


def _corpus_module():
    spec = importlib.util.spec_from_file_location("corpus_benchmark", CORPUS_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


VARS = dedent(
    """
    var_groups:
      - name: g
        entity_key: user
        vars:
          - entity_var:
              name: events
              select: count(*)
              from: inputs/tracks
    """
)


def test_rows_of_a_project_that_runs_and_one_validate_rejects(tmp_path: Path) -> None:
    corpus = _corpus_module()
    folder = tmp_path / "corpus"
    # no siteconfig, as in the corpus: sample-data writes one beside its DuckDB file
    write_project(folder / "works", models={"inputs.yaml": INPUTS, "profiles.yaml": VARS}, siteconfig=None)
    write_project(folder / "broken", project=PB_PROJECT + "surprise: 1\n", siteconfig=None)
    (folder / "LIST.txt").write_text("# the two\nworks\nbroken\n")
    names = corpus.project_names(folder, "LIST.txt")
    assert names == ["works", "broken"]
    works, broken = corpus.run_corpus(
        folder, names, timeout=120, memory_mb=3072, rows=60, end_time="2026-06-01T00:00:00Z"
    )
    assert works.status == {"validate": "ok", "sample-data": "ok", "run": "ok"}
    # id stitcher, all, input vars and mapped input vars, entity vars, features, the default feature view
    assert works.steps == 7 and works.view_rows and works.view_rows > 0 and not works.error
    assert broken.status == {"validate": "FAIL", "sample-data": "-", "run": "-"}
    assert broken.error.startswith("pb_project.yaml:") and "surprise" in broken.error  # no scratch path
    text = corpus.format_table([works, broken])
    assert "validate 1/2, sample-data 1/2, run 1/2" in text
    assert not any((folder / n / "output").exists() for n in names)  # the corpus is never written to


def test_first_error_marks_a_traceback() -> None:
    corpus = _corpus_module()
    assert corpus.first_error("note: x\nerror: input 'a' is missing\n", 1) == "input 'a' is missing"
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'k'\n"
    assert corpus.first_error(trace, 1) == "TRACEBACK KeyError: 'k'"
