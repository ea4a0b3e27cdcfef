"""Fuzz: 1,000 broken variants of valid projects; every failure is a located ProfilesError.

Each case copies a valid project, applies one to three mutations (seeded, so a failing case can be
replayed with `case(seed, n)`), then loads, plans and compiles it as `profiles-dagster validate` and a
run do. Allowed outcomes: success (the mutation left a valid project), or a ProfilesError naming a
file, and a line whenever that file exists and has content. Anything else is a finding.
"""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.sql.compiler import CompileContext, compile_step
from profiles_dagster.sql.names import material_name, table
from profiles_dagster_tests.projects import EXAMPLE_PROJECT, copy_example, write_project

SEED = 20251101
CASES = 1000

SECOND_PROJECT_MODELS = """\
inputs:
  - name: tracks
    app_defaults:
      table: raw.tracks
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: lower(anonymous_id)
          type: anonymous_id
          entity: user
  - name: orders
    app_defaults:
      table: raw.orders
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
macros:
  - name: positive
    inputs:
      - column
    value: "greatest({{ column }}, 0)"
models:
  - name: big_orders
    model_type: sql_template
    model_spec:
      materialization:
        output_type: table
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
      single_sql: |
        {% with o = this.DeRef("inputs/orders") %}
        select user_id, timestamp, amount from {{ o }} where amount > 100
        {% endwith %}
  - name: buyers
    model_type: entity_cohort
    model_spec:
      extends: user/all
      filter_pipeline:
        - type: include
          value: "{{ user.Var('order_total') }} > 0"
  - name: loyal_buyers
    model_type: entity_cohort
    model_spec:
      extends: models/buyers
      filter_pipeline:
        - type: exclude
          value: "{{ user.Var('order_count') }} < 3"
var_groups:
  - name: spend
    entity_key: user
    vars:
      - input_var:
          name: order_rank
          select: row_number()
          from: inputs/orders
          window:
            partition_by:
              - user_main_id
            order_by:
              - timestamp
      - entity_var:
          name: order_total
          select: sum({{ positive("amount") }})
          from: inputs/orders
          default_value: 0
      - entity_var:
          name: order_count
          select: count(*)
          from: inputs/orders
      - entity_var:
          name: first_amount
          select: max(amount)
          from: inputs/orders
          where: order_rank = 1
      - entity_var:
          name: big_order_count
          select: count(*)
          from: models/big_orders
      - entity_var:
          name: avg_order
          select: "{{ user.Var('order_total') }} / nullif({{ user.Var('order_count') }}, 0)"
      - entity_var:
          name: seen_days
          select: date_diff('day', min(timestamp), {{ end_time_sql }})
          from: inputs/tracks
"""

SECOND_PROJECT_SETTINGS = "retention_runs: 3\nrun_lock:\n  wait_seconds: 5\n"


def _example(root: Path) -> Path:
    copy_example(root)
    shutil.copy(EXAMPLE_PROJECT / "profiles_dagster.yaml", root / "profiles_dagster.yaml")
    return root


def _second(root: Path) -> Path:
    write_project(root, models={"profiles.yaml": SECOND_PROJECT_MODELS})
    (root / "profiles_dagster.yaml").write_text(SECOND_PROJECT_SETTINGS, encoding="utf-8")
    return root


BASES: dict[str, Callable[[Path], Path]] = {"example": _example, "second": _second}


# -- mutations ----------------------------------------------------------------------------------------------

INTERESTING = [
    "",
    " ",
    "0",
    "-1",
    0,
    -5,
    3.5,
    1e308,
    True,
    None,
    [],
    {},
    ["x"],
    {"a": 1},
    "{{",
    "}}",
    "{% if %}",
    "{{ user.Var('nope') }}",
    "{{ nothing_here }}",
    "{{ this.DeRef('models/nope') }}",
    "inputs/nope",
    "models/nope",
    "user/nope",
    "a/b/c",
    "(unclosed",
    "[z-a]",
    "*",
    "select from where",
    "'; drop table x; --",
    'x" y',
    "ünïcødé 名前",
    "x" * 1000,
    "\t",
    "\\",
    "%",
    "user_main_id",
    "main",
    "1d",
]
GARBAGE = [":", "{", "}", "[", "]", '"', "'", "{{", "}}", "{%", "%}", "&", "*", "!", "%", "\t", "- ", "? ", "|", ">"]


def _walk(node: Any, path: tuple = ()) -> list[tuple]:
    """Every key path into a YAML tree."""
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, (*path, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if "output" not in p.parts)


def _text_mutation(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True) or [""]
    i = rng.randrange(len(lines))
    op = rng.choice(["delete", "duplicate", "swap", "indent", "dedent", "garbage", "truncate", "template", "tab"])
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap" and i + 1 < len(lines):
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif op == "indent":
        lines[i] = "  " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i].lstrip()
    elif op == "garbage":
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(GARBAGE) + lines[i][pos:]
    elif op == "truncate":
        joined = "".join(lines)
        return joined[: rng.randrange(len(joined) + 1)], "truncate"
    elif op == "template":
        joined = "".join(lines)
        swaps = [
            ("{{", "{"),
            ("}}", "}"),
            ("%}", "}"),
            ("{%", "{"),
            ("Var(", "Var(("),
            ("DeRef(", "DeRef"),
            ("')", "'"),
        ]
        old, new = rng.choice(swaps)
        if old in joined:
            idx = rng.choice([k for k in range(len(joined)) if joined.startswith(old, k)])
            return joined[:idx] + new + joined[idx + len(old) :], f"template {old!r}->{new!r}"
        return joined, "template (none)"
    elif op == "tab":
        lines[i] = "\t" + lines[i].lstrip(" ")
    return "".join(lines), f"{op} line {i + 1}"


def _tree_mutation(rng: random.Random, data: Any) -> tuple[Any, str]:
    paths = [p for p in _walk(data) if p]
    if not paths:
        return rng.choice(INTERESTING), "replace document"
    path = rng.choice(paths)
    parent = _get(data, path[:-1])
    key = path[-1]
    op = rng.choice(["delete", "rename", "retype", "interesting", "unknown_key", "duplicate_item", "wrap"])
    if op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        new = rng.choice([key[:-1], key + "s", key.upper(), "x" + key, key.replace("_", "")]) or "k"
        parent[new] = parent.pop(key)
        return data, f"rename {path} -> {new}"
    elif op == "retype":
        value = parent[key]
        parent[key] = rng.choice([str(value), [value], {"v": value}, None, 7, not bool(value)])
    elif op == "interesting":
        parent[key] = rng.choice(INTERESTING)
    elif op == "unknown_key":
        target = parent[key] if isinstance(parent[key], dict) else parent
        if isinstance(target, dict):
            target[rng.choice(["colour", "materialisation", "enabled", "name2", "extends"])] = "x"
    elif op == "duplicate_item" and isinstance(parent, list):
        parent.insert(key, parent[key])
    elif op == "wrap":
        parent[key] = [parent[key], parent[key]]
    return data, f"{op} {'.'.join(map(str, path))}"


def _targeted(rng: random.Random, root: Path) -> str:
    """Semantic breakage a random edit rarely finds: cycles, dangling references, bad regexes."""
    models = root / "models" / "profiles.yaml"
    try:
        doc = yaml.safe_load(models.read_text(encoding="utf-8"))
        project = yaml.safe_load((root / "pb_project.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "targeted (skipped: already broken)"
    if not (isinstance(doc, dict) and isinstance(project, dict)):
        return "targeted (skipped: already broken)"
    op = rng.choice(["var_cycle", "self_ref", "cohort_cycle", "model_cycle", "dangling", "bad_regex", "rm_file"])
    entity_vars = [v["entity_var"] for g in doc.get("var_groups", []) for v in g["vars"] if "entity_var" in v]
    if op == "var_cycle" and len(entity_vars) >= 2:
        a, b = rng.sample(entity_vars, 2)
        a.pop("from", None)
        b.pop("from", None)
        a["select"] = f"{{{{ user.Var('{b['name']}') }}}} + 1"
        b["select"] = f"{{{{ user.Var('{a['name']}') }}}} + 1"
    elif op == "self_ref" and entity_vars:
        v = rng.choice(entity_vars)
        v.pop("from", None)
        v["select"] = f"{{{{ user.Var('{v['name']}') }}}}"
    elif op == "cohort_cycle":
        cohorts = [m for m in doc.get("models", []) if m["model_type"] == "entity_cohort"]
        if cohorts:
            c = rng.choice(cohorts)
            c["model_spec"]["extends"] = f"models/{c['name']}"
    elif op == "model_cycle":
        sqls = [m for m in doc.get("models", []) if m["model_type"] == "sql_template"]
        if sqls:
            m = sqls[0]
            m["model_spec"]["single_sql"] = f"select * from {{{{ this.DeRef('models/{m['name']}') }}}}"
    elif op == "dangling":
        where = rng.choice(["var_from", "edge", "entity_key", "id_type", "fv_id"])
        if where == "var_from" and entity_vars:
            rng.choice(entity_vars)["from"] = rng.choice(["inputs/missing", "models/missing", "elsewhere/x"])
        elif where == "edge":
            for m in doc.get("models", []):
                if m["model_type"] == "id_stitcher":
                    m["model_spec"]["edge_sources"].append({"from": "inputs/missing"})
        elif where == "entity_key":
            for g in doc.get("var_groups", []):
                if "entity_key" in g:
                    g["entity_key"] = "customer"
        elif where == "id_type":
            holder = root / "models" / "inputs.yaml"  # the example keeps its inputs in their own file
            if not doc.get("inputs") and holder.is_file():
                other = yaml.safe_load(holder.read_text(encoding="utf-8"))
                other["inputs"][0]["app_defaults"]["ids"][0]["type"] = "phone"
                holder.write_text(yaml.safe_dump(other, sort_keys=False), encoding="utf-8")
            for inp in doc.get("inputs", []):
                inp["app_defaults"]["ids"][0]["type"] = "phone"
        elif where == "fv_id":
            project["entities"][0]["feature_views"] = {"using_ids": [{"id": "phone"}]}
    elif op == "bad_regex":
        regex = rng.choice(["(unclosed", "*x", "[z-a]", "(?P<"])
        project["id_types"][0]["filters"] = [{"type": "include", "regex": regex}]
    elif op == "rm_file":
        victim = rng.choice([models, root / "pb_project.yaml", root / "siteconfig.yaml", root / "models"])
        if victim.is_dir():
            shutil.rmtree(victim)
        else:
            victim.unlink()
        return f"targeted {op} {victim.name}"
    models.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    (root / "pb_project.yaml").write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
    return f"targeted {op}"


def mutate(rng: random.Random, root: Path) -> list[str]:
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        files = _yaml_files(root)
        kind = rng.random()
        if kind < 0.15:
            try:
                done.append(_targeted(rng, root))
            except (KeyError, IndexError, TypeError, AttributeError, ValueError):  # an earlier edit reshaped it
                done.append("targeted (skipped: reshaped)")
            continue
        if not files:
            break
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8", errors="replace")
        if kind < 0.2:
            choice = rng.choice(["empty", "blank", "list", "scalar", "binary", "comment"])
            content = {"empty": "", "blank": "\n\n", "list": "- a\n- b\n", "scalar": "just text\n", "comment": "# x\n"}
            if choice == "binary":
                path.write_bytes(b"\xff\xfe\x00garbage\x80")
            else:
                path.write_text(content[choice], encoding="utf-8")
            done.append(f"{path.name}: {choice} file")
        elif kind < 0.6:
            new, what = _text_mutation(rng, text)
            path.write_text(new, encoding="utf-8")
            done.append(f"{path.name}: {what}")
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            data, what = _tree_mutation(rng, data)
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
            done.append(f"{path.name}: {what}")
    return done


# -- one case -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    n: int
    mutations: list[str]
    result: str  # ok | located | finding
    detail: str = ""


def _compile_all(loaded) -> None:
    plan = loaded.plan
    materials = {s.key: table(material_name(s.model_name, s.content_hash, 1), "profiles") for s in plan.steps}
    ctx = CompileContext(loaded.project, plan, "duckdb", "duckdb", materials, datetime(2025, 11, 1))
    for step in plan.steps:
        compile_step(step, ctx)


def _check_located(exc: ProfilesError) -> str | None:
    """Why this error is not located well enough, or None."""
    if not exc.file:
        return "no file"
    path = Path(exc.file)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        content = path.read_bytes()
        if content.strip() and not content.lstrip().startswith(b"#") and exc.line is None:
            return "no line"
    if "Traceback" in str(exc):
        return "traceback in message"
    return None


def case(seed: int, n: int, folder: Path, compile_it: bool) -> Outcome:
    rng = random.Random(seed * 100_003 + n)
    base = rng.choice(sorted(BASES))
    root = BASES[base](folder / f"c{n}")
    mutations = [base, *mutate(rng, root)]
    try:
        loaded = load(root)
        if compile_it:
            _compile_all(loaded)
    except ProfilesError as exc:
        problem = _check_located(exc)
        if problem:
            return Outcome(n, mutations, "finding", f"{problem}: {exc}")
        return Outcome(n, mutations, "located", str(exc))
    except Exception as exc:  # the finding this test exists for
        return Outcome(n, mutations, "finding", f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Outcome(n, mutations, "ok")


def test_fuzz_every_failure_is_a_located_profiles_error(tmp_path: Path) -> None:
    start = time.monotonic()
    outcomes = []
    for n in range(CASES):
        outcomes.append(case(SEED, n, tmp_path, compile_it=n % 2 == 0))
    findings = [o for o in outcomes if o.result == "finding"]
    counts = {r: sum(o.result == r for o in outcomes) for r in ("ok", "located", "finding")}
    report = "\n".join(f"case {o.n} {o.mutations}: {o.detail[:300]}" for o in findings[:25])
    assert not findings, f"{counts}\n{report}"
    assert counts["located"] > CASES // 2  # most mutations do break the project
    assert time.monotonic() - start < 120
    print(f"fuzz: {counts} in {time.monotonic() - start:.1f}s")


@pytest.mark.parametrize("n", range(0, 1000, 50))
def test_cli_prints_one_error_line_and_exits_1(n: int, tmp_path: Path) -> None:
    """`validate` on broken projects: `error: ...` on stderr and exit 1; no exception escapes main()."""
    rng = random.Random(SEED + n)
    root = BASES[rng.choice(sorted(BASES))](tmp_path / "p")
    for _ in range(3):
        mutate(rng, root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", "-p", str(root)])
    if code:
        assert code == 1 and err.getvalue().startswith("error: ") and "Traceback" not in err.getvalue()


def test_bases_are_valid(tmp_path: Path) -> None:
    for name, make in BASES.items():
        loaded = load(make(tmp_path / name))
        _compile_all(loaded)
