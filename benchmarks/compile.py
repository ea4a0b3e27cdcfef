"""Compile cost against the size of the project: 200 chained entity vars, and the corpus's largest project.

A project is generated in a temporary folder: one event input and N entity vars, each with `from:` and
reading the var before it (`sum(amount) + <previous var>`), the shape whose SQL once doubled per var.
For each N: load, plan and compile every step in-process (best of `--repeat`), the bytes of SQL it
writes, and `profiles-dagster validate` as a fresh process (load, plan, compile and parse back every
step, what a user waits for). Then `profiles-dagster validate` on the corpus project with the most vars
(`../shared/pb_corpus`, or `--corpus`): its time, or the first error that stops it and then the time
of the largest project that does validate.
Targets (issue 17): 200 vars compile in <= 2 s with <= 1 MB of SQL; the largest project validates in <= 3 s.

    python benchmarks/compile.py                  # 50 and 200 vars
    python benchmarks/compile.py --counts 50,200,400 --repeat 5
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, REPO, clean_env, run_process, table

TARGET_SECONDS = 2.0
TARGET_BYTES = 1_000_000
TARGET_VALIDATE = 3.0
VALIDATE_TIMEOUT = 120  # seconds: a project whose compile explodes is stopped, and said so

PROJECT = """\
name: compile_bench
schema_version: 99
connection: bench
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
  - name: events
    app_defaults:
      table: raw.events
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: anonymous_id
          type: anonymous_id
          entity: user
"""


def generate_project(folder: Path, n_vars: int) -> Path:
    """pb_project.yaml and models/: `n_vars` entity vars of one input, each reading the one before it."""
    (folder / "models").mkdir(parents=True)
    (folder / "pb_project.yaml").write_text(PROJECT, encoding="utf-8")
    (folder / "models" / "inputs.yaml").write_text(INPUTS, encoding="utf-8")
    lines = ["var_groups:", "  - name: chain", "    entity_key: user", "    vars:"]
    for n in range(n_vars):
        reads = f" + {{{{ user.Var('v{n - 1:03d}') }}}}" if n else ""
        lines += [
            "      - entity_var:",
            f"          name: v{n:03d}",
            f'          select: "sum(amount){reads}"',
            "          from: inputs/events",
        ]
    (folder / "models" / "vars.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def compile_in_process(folder: Path) -> tuple[float, int, int]:
    """Seconds to load, plan and compile every step for DuckDB; bytes of SQL; steps."""
    from profiles_dagster.offline import offline_context
    from profiles_dagster.plan.planner import build_plan
    from profiles_dagster.project.loader import load_project
    from profiles_dagster.sql.compiler import compile_step

    start = time.perf_counter()
    project = load_project(folder)
    plan = build_plan(project)
    ctx = offline_context(project, plan, "duckdb")
    size = sum(len(compile_step(step, ctx).sql("duckdb").encode()) for step in plan.steps)
    return time.perf_counter() - start, size, len(plan.steps)


def find_corpus(given: str | None) -> Path | None:
    if given:
        return Path(given)
    for parent in REPO.parents:
        if (parent / "shared" / "pb_corpus").is_dir():
            return parent / "shared" / "pb_corpus"
    return None


_VAR = re.compile(r"^\s*-?\s*(entity_var|input_var):", re.MULTILINE)


def projects_by_size(corpus: Path) -> list[tuple[int, Path]]:
    """The corpus's projects with their number of vars (entity and input vars in their YAML), most first."""
    counts = []
    for project in sorted(p for p in corpus.iterdir() if (p / "pb_project.yaml").is_file()):
        files = [*project.rglob("*.yaml"), *project.rglob("*.yml")]
        count = sum(len(_VAR.findall(f.read_text(encoding="utf-8", errors="replace"))) for f in files if f.is_file())
        counts.append((count, project))
    return sorted(counts, key=lambda c: -c[0])


def validate_corpus(corpus: Path, cli: str, env: dict[str, str], cwd: Path) -> None:
    """Validate the largest project; if an error stops it, say which, and time the largest one that validates."""
    dialects = tomllib.loads((Path(__file__).with_name("corpus_dialects.toml")).read_text())["dialects"]
    for rank, (count, source) in enumerate(projects_by_size(corpus)):
        # a copy with the dialect its SQL is written in (benchmarks/corpus_dialects.toml), as a user would set it
        project = cwd / "corpus" / source.name
        shutil.copytree(source, project, symlinks=True, ignore=shutil.ignore_patterns("output", "logs"))
        if source.name in dialects and not (project / "profiles_dagster.yaml").exists():
            (project / "profiles_dagster.yaml").write_text(f"dialect: {dialects[source.name]}\n", encoding="utf-8")
        argv = ["timeout", str(VALIDATE_TIMEOUT), cli, "validate", "-p", str(project)]
        proc = run_process(argv, env=env, cwd=cwd, check=False)
        which = "largest corpus project" if rank == 0 else "largest corpus project that validates,"
        label = f"{which} {project.name} ({count} vars)"
        if proc.returncode == 0:
            print(f"{label}: validate {proc.seconds:.2f} s, peak {proc.peak_mib:,.0f} MiB")
            print(f"{label}: {verdict(proc.seconds, TARGET_VALIDATE)} (target <= {TARGET_VALIDATE} s)")
            return
        if rank == 0:
            lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
            if proc.returncode == 124:
                first = f"no answer in {VALIDATE_TIMEOUT} s"
            else:
                errors = [line for line in lines if line.startswith("error:")]
                first = (errors or lines or [f"exit code {proc.returncode}"])[0]
            print(f"{label}: validate stops after {proc.seconds:.2f} s at: {first}")
    print("no corpus project validates")


def verdict(value: float, target: float) -> str:
    return f"{value / target:.2f} of target: {'met' if value <= target else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,200", help="numbers of chained vars (default 50,200)")
    parser.add_argument("--repeat", type=int, default=3, help="in-process compiles per count (best is kept)")
    parser.add_argument("--corpus", help="folder of pb projects (default: ../shared/pb_corpus)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="profiles_compile_"))
    env = clean_env()
    cli = str(BIN / "profiles-dagster")
    rows, results = [], {}
    try:
        for n in counts:
            project = generate_project(folder / f"chain_{n}", n)
            best = min((compile_in_process(project) for _ in range(args.repeat)), key=lambda r: r[0])
            seconds, size, steps = best
            proc = run_process([cli, "validate", "-p", str(project)], env=env, cwd=folder)
            results[n] = (seconds, size, proc.seconds)
            rows.append([n, steps, seconds, f"{size / 1024:,.1f}", proc.seconds, proc.cpu, f"{proc.peak_mib:,.0f}"])
        print(
            table(
                rows,
                ["chained vars", "steps", "compile s", "SQL KiB", "validate s", "validate cpu s", "peak MiB"],
            )
        )
        if len(counts) > 1:
            low, high = counts[0], counts[-1]
            ratio = results[high][1] / results[low][1]
            print(f"SQL size {high}/{low} vars: {ratio:.2f}x for {high / low:.1f}x the vars (linear: about the same)")
        if 200 in results:
            seconds, size, validate = results[200]
            print(
                f"200 vars: compile {seconds:.2f} s, {verdict(seconds, TARGET_SECONDS)} (target <= {TARGET_SECONDS} s)"
            )
            print(f"200 vars: SQL {size:,} bytes, {verdict(size, TARGET_BYTES)} (target <= {TARGET_BYTES:,} bytes)")
            print(f"200 vars: validate (fresh process) {validate:.2f} s")
        corpus = find_corpus(args.corpus)
        if corpus is None:
            print("corpus: not found (give --corpus)")
            return 0
        validate_corpus(corpus, cli, env, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
