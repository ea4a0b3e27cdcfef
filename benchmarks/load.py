"""Code-location load time: the example project and a generated one with 20 inputs and 300 vars.

Each measurement is a fresh process, repeated (best and median printed): importing the
definitions module as Dagster's code server does, and `dagster definitions validate`; next to
the floors (`python -c pass`, `python -c "import dagster"`) so the part that is ours is visible.
For the imports, "loaded s" is when the import returned (what a code server waits for) and the
process's wall time adds the interpreter's teardown (0.2-0.6 s with dagster imported, here).
`build_definitions` alone is timed in-process (after its imports) for both projects.
PROFILES_SITE_CONFIG points at a temporary siteconfig, so nothing is written into the repo but the
bytecode of the package and the example (`__pycache__/`, ignored by git; see `_common.compile_bytecode`).

    python benchmarks/load.py                 # 3 repeats
    python benchmarks/load.py --repeat 5 --profile   # + where build_definitions spends its time
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, PYTHON, REPO, clean_env, run_process, table

ID_TYPES = ("user_id", "anonymous_id", "email")
TEMPLATES = [  # (select, where) of generated entity vars
    ("count(*)", None),
    ("min(timestamp)", None),
    ("max(timestamp)", None),
    ("sum(amount)", "status = 'completed'"),
    ("count(distinct session_id)", None),
    ("avg(amount)", "status = 'completed'"),
    ("max(amount)", None),
    ("count(*)", "status = 'completed'"),
    ("sum(quantity)", None),
    ("min(amount)", "amount > 0"),
    ("count(*)", "channel = 'web'"),
    ("max(timestamp)", "status = 'completed'"),
    ("count(distinct channel)", None),
    ("sum(amount)", "channel = 'app'"),
]


def generate_project(folder: Path, n_inputs: int = 20, n_vars: int = 300) -> Path:
    """pb_project.yaml, models/, definitions.py: `n_inputs` event inputs, `n_vars` entity vars spread over them
    (every 15th var derived from two others), a feature view keyed by email and a cohort."""
    (folder / "models").mkdir(parents=True)
    (folder / "pb_project.yaml").write_text(
        "name: load_bench\nschema_version: 99\nconnection: bench\nmodel_folders:\n  - models\n"
        "entities:\n  - name: user\n    id_types:\n"
        + "".join(f"      - {t}\n" for t in ID_TYPES)
        + "    feature_views:\n      using_ids:\n        - id: email\n          name: user_features_by_email\n"
        "id_types:\n  - name: user_id\n    filters:\n      - type: exclude\n        value: '0'\n"
        "  - name: anonymous_id\n    filters:\n      - type: exclude\n        regex: '(undefined|null)'\n"
        "  - name: email\n    filters:\n      - type: include\n        regex: '.+@.+'\n",
        encoding="utf-8",
    )
    inputs = ["inputs:"]
    for i in range(n_inputs):
        ids = ID_TYPES if i % 3 == 0 else ID_TYPES[:2]
        inputs += [
            f"  - name: events_{i:02d}",
            "    app_defaults:",
            f"      table: raw.events_{i:02d}",
            "      occurred_at_col: timestamp",
            "      ids:",
        ]
        for t in ids:
            select = "lower(trim(email))" if t == "email" else t
            inputs += [f"        - select: {select}", f"          type: {t}", "          entity: user"]
    (folder / "models" / "inputs.yaml").write_text("\n".join(inputs) + "\n", encoding="utf-8")
    lines = ["var_groups:", "  - name: features", "    entity_key: user", "    vars:"]
    made: list[str] = []
    for v in range(n_vars):
        name = f"var_{v:03d}"
        lines += ["      - entity_var:", f"          name: {name}"]
        if v % 15 == 14 and len(made) >= 2:
            lines.append(
                f"          select: \"coalesce({{{{ user.Var('{made[-1]}') }}}}, 0) + "
                f"coalesce({{{{ user.Var('{made[-2]}') }}}}, 0)\""
            )
        else:
            select, where = TEMPLATES[v % len(TEMPLATES)]
            lines += [f'          select: "{select}"', f"          from: inputs/events_{v % n_inputs:02d}"]
            if where:
                lines.append(f'          where: "{where}"')
        made.append(name)
    lines += [
        "models:",
        "  - name: big_spenders",
        "    model_type: entity_cohort",
        "    model_spec:",
        "      extends: user/all",
        "      materialization:",
        "        output_type: table",
        "      filter_pipeline:",
        "        - type: include",
        "          value: \"{{ user.Var('var_003') }} >= 100\"",
    ]
    (folder / "models" / "profiles.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "definitions.py").write_text(
        "from pathlib import Path\n\nfrom profiles_dagster import build_definitions\n\n"
        "defs = build_definitions(Path(__file__).resolve().parent)\n",
        encoding="utf-8",
    )
    return folder


_IN_PROCESS = """
import gc, json, sys, time
from pathlib import Path
import profiles_dagster  # imports first: only build_definitions is timed
from profiles_dagster import build_definitions
sys.path.insert(0, {repo!r})
folder = Path({folder!r})
paused = [0.0, 0.0]  # garbage collection: seconds so far, start of the current pass
def on_gc(phase, info):
    if phase == "start":
        paused[1] = time.perf_counter()
    else:
        paused[0] += time.perf_counter() - paused[1]
gc.callbacks.append(on_gc)
times, cpus, gcs = [], [], []
for _ in range(3):
    paused[0] = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    defs = build_definitions(folder)
    times.append(time.perf_counter() - start)
    cpus.append(time.process_time() - cpu)
    gcs.append(paused[0])
specs = sum(len(a.specs) if hasattr(a, "specs") else 1 for a in defs.assets or [])
print(json.dumps({{"first": times[0], "again": min(times[1:]), "cpu": cpus[0], "gc": gcs[0], "assets": specs}}))
"""

_PROFILE = """
import cProfile, pstats, sys
from pathlib import Path
import profiles_dagster
from profiles_dagster import build_definitions
cProfile.run("build_definitions(Path({folder!r}))", {out!r})
stats = pstats.Stats({out!r})
stats.sort_stats("cumulative").print_stats(r"profiles_dagster", 25)
"""


def importing(module: str) -> list[str]:
    """`python -c "import <module>"`, printing when the import returned (see `Proc.mark`)."""
    return [PYTHON, "-c", f"import {module}\nimport time\nprint('loaded', time.perf_counter(), flush=True)"]


def measure(
    argv: list[str], env: dict[str, str], cwd: Path, repeat: int
) -> tuple[float, float, float, float, float | None]:
    """Best and median wall seconds, best CPU seconds, peak MiB and best 'loaded' seconds of `repeat` fresh
    processes."""
    times, cpus, peaks, loaded = [], [], [], []
    for _ in range(repeat):
        proc = run_process(argv, env=env, cwd=cwd)
        times.append(proc.seconds)
        cpus.append(proc.cpu)
        peaks.append(proc.peak_mib)
        mark = proc.mark("loaded")
        if mark is not None:
            loaded.append(mark)
    return min(times), statistics.median(times), min(cpus), max(peaks), min(loaded, default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement (default 3)")
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--vars", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="also print cProfile of build_definitions (big)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="profiles_load_"))
    start = time.perf_counter()
    try:
        site = folder / "siteconfig.yaml"
        site.write_text(
            "connections:\n"
            + "".join(
                f"  {name}:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
                f"        path: {folder / 'load.duckdb'}\n        schema: profiles\n"
                for name in ("example", "bench")
            ),
            encoding="utf-8",
        )
        big = generate_project(folder / "big", args.inputs, args.vars)
        env = clean_env(PROFILES_SITE_CONFIG=str(site), DAGSTER_HOME=str(folder / "dagster_home"), PYTHONPATH=str(REPO))
        (folder / "dagster_home").mkdir()
        compileall.compile_dir(big, quiet=1)  # as the package's and the example's (`clean_env`)
        dagster = str(BIN / "dagster")
        rows = []
        cases = [
            ("python -c pass (floor)", [PYTHON, "-c", "pass"], REPO),
            ("python -c 'import dagster' (floor)", importing("dagster"), REPO),
            ("example: import example_project.definitions", importing("example_project.definitions"), REPO),
            (
                "example: dagster definitions validate",
                [dagster, "definitions", "validate", "-m", "example_project.definitions"],
                REPO,
            ),
            (f"{args.inputs} inputs/{args.vars} vars: import definitions", importing("definitions"), big),
            (
                f"{args.inputs} inputs/{args.vars} vars: dagster definitions validate",
                [dagster, "definitions", "validate", "-f", "definitions.py"],
                big,
            ),
        ]
        floor = floor_cpu = floor_loaded = None
        for label, cmd, cwd in cases:
            best, median, cpu, peak, loaded = measure(cmd, env, cwd, args.repeat)
            if "import dagster" in label:
                floor, floor_cpu, floor_loaded = best, cpu, loaded
            mine = floor is not None and "floor" not in label
            rows.append(
                [
                    label,
                    "" if loaded is None else loaded,
                    f"{loaded - floor_loaded:.2f}" if mine and loaded is not None and floor_loaded is not None else "",
                    best,
                    median,
                    f"{best - floor:.2f}" if mine else "",
                    cpu,
                    f"{cpu - floor_cpu:.2f}" if mine else "",
                    peak,
                ]
            )
            until = "" if loaded is None else f"loaded at {loaded:.2f}s, "
            print(f"   {label}: {until}best {best:.2f}s, {cpu:.2f}s CPU", flush=True)
        print()
        print(
            table(
                rows,
                [
                    "fresh process",
                    "loaded s",
                    "loaded above dagster s",
                    "best s",
                    "median s",
                    "above dagster s",
                    "best CPU s",
                    "CPU above dagster s",
                    "peak MiB",
                ],
            )
        )
        print(
            "(loaded = best time from the process's start to the end of the import, what a code server waits for;"
            " best/median = the whole process, teardown included; CPU = user+system seconds of the process:"
            " steadier than wall time on a shared machine)"
        )
        inproc = []
        for label, proj in (("example", REPO / "example_project"), (f"{args.inputs} inputs/{args.vars} vars", big)):
            code = _IN_PROCESS.format(repo=str(REPO), folder=str(proj))
            proc = run_process([PYTHON, "-c", code], env=env, cwd=folder)
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            inproc.append([label, data["assets"], data["first"], data["cpu"], data["gc"], data["again"]])
        print()
        print(
            table(
                inproc,
                [
                    "build_definitions in-process",
                    "asset specs",
                    "first call s",
                    "first call CPU s",
                    "of it GC s",
                    "again s",
                ],
            )
        )
        print("(GC = the garbage collector's passes during the first call; cProfile books them on whatever ran)")
        if args.profile:
            code = _PROFILE.format(folder=str(big), out=str(folder / "prof.out"))
            print(run_process([PYTHON, "-c", code], env=env, cwd=folder).stdout)
        print(f"\n(benchmark took {time.perf_counter() - start:.0f}s)")
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
