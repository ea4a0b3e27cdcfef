"""How the entity-var step grows with the number of vars: one input, 5, 50 and 200 entity vars.

A project is generated in a temporary folder: one event input (`raw.events`, user_id and
anonymous_id ids, default id stitcher) and N entity vars, all plain aggregates of that input
with a `where` (count, sum, min, max, avg over a few columns), as a real feature set has. Each N
runs `profiles-dagster run` as a fresh process on a fresh copy of the same data; the ratios
50/5 and 200/5 are printed for the entity-var step alone and for the whole run, next to the same
aggregates written by hand as one GROUP BY over the step's own input (the floor).

    python benchmarks/vars.py                   # 1M event rows, 5/50/200 vars
    python benchmarks/vars.py --rows 200k --counts 5,50,200,400 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import (
    BIN,
    CACHE,
    END_TIME,
    clean_env,
    cli_steps,
    fresh_copy,
    human,
    parse_size,
    run_process,
    table,
    write_site_config,
)

EVENTS = ["view", "add", "cart", "checkout", "search", "signin", "share", "review"]
# (select, where) templates, cycled; {e} an event, {k} a per-cycle threshold
TEMPLATES = [
    ("count(*)", "event = '{e}'"),
    ("sum(amount)", "event = '{e}'"),
    ("max(timestamp)", "event = '{e}'"),
    ("min(timestamp)", "amount > {k}"),
    ("avg(amount)", "quantity >= {q}"),
    ("sum(quantity)", "event = '{e}'"),
    ("max(amount)", "event = '{e}'"),
    ("count(*)", "amount > {k}"),
    ("min(amount)", "event = '{e}'"),
    ("sum(amount * quantity)", "event = '{e}'"),
]


def var_specs(n: int) -> list[tuple[str, str, str]]:
    out = []
    for i in range(n):
        select, where = TEMPLATES[i % len(TEMPLATES)]
        cycle = i // len(TEMPLATES)
        e = EVENTS[(i + cycle) % len(EVENTS)]
        where = where.format(e=e, k=10 + 5 * cycle, q=1 + cycle % 4)
        out.append((f"v{i:03d}", select, where))
    return out


def write_project(folder: Path, n_vars: int) -> Path:
    (folder / "models").mkdir(parents=True)
    (folder / "pb_project.yaml").write_text(
        "name: vars_bench\nschema_version: 99\nconnection: bench\nmodel_folders:\n  - models\n"
        "entities:\n  - name: user\n    id_types:\n      - user_id\n      - anonymous_id\n"
        "id_types:\n  - name: user_id\n  - name: anonymous_id\n",
        encoding="utf-8",
    )
    (folder / "models" / "inputs.yaml").write_text(
        "inputs:\n  - name: events\n    app_defaults:\n      table: raw.events\n      occurred_at_col: timestamp\n"
        "      ids:\n        - select: user_id\n          type: user_id\n          entity: user\n"
        "        - select: anonymous_id\n          type: anonymous_id\n          entity: user\n",
        encoding="utf-8",
    )
    lines = ["var_groups:", "  - name: features", "    entity_key: user", "    vars:"]
    for name, select, where in var_specs(n_vars):
        lines += [
            "      - entity_var:",
            f"          name: {name}",
            f'          select: "{select}"',
            "          from: inputs/events",
            f'          where: "{where}"',
        ]
    (folder / "models" / "profiles.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def raw_events(rows: int) -> Path:
    """raw.events: ~rows/20 users on 2 devices each; half the rows carry the user_id (cached)."""
    import duckdb
    import pandas as pd

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"events_{rows}_{duckdb.__version__}.duckdb"
    if path.exists():
        return path
    rng = np.random.default_rng(7)
    users = max(1, rows // 20)
    user = rng.integers(0, users, rows)
    frame = pd.DataFrame(
        {
            "user": user,
            "dev": user * 2 + rng.integers(0, 2, rows),
            "has_uid": rng.random(rows) < 0.5,
            "event": rng.integers(0, len(EVENTS), rows),
            "cents": np.maximum(100, np.round(rng.lognormal(3.4, 0.8, rows) * 100)).astype(np.int64),
            "quantity": rng.integers(1, 6, rows),
            "us": rng.integers(1735689600_000000, 1761868800_000000, rows),
        }
    )
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute("CREATE SCHEMA raw").fetchall()
    con.register("codes", frame)
    events = "[" + ", ".join(f"'{e}'" for e in EVENTS) + "]"
    con.execute(
        "CREATE TABLE raw.events AS SELECT printf('e%09d', row_number() OVER (ORDER BY us)) AS message_id, "
        "CASE WHEN has_uid THEN CAST(100000 + user AS VARCHAR) END AS user_id, "
        "printf('%08x-%04x', (dev * 2654435761 + 12345) % 4294967296, (dev * 40503) % 65536) AS anonymous_id, "
        f"{events}[1 + event] AS event, CAST(cents AS DECIMAL(12, 2)) / 100 AS amount, quantity, "
        "make_timestamp(us) AS timestamp FROM codes ORDER BY us"
    ).fetchall()
    con.execute("CHECKPOINT").fetchall()
    con.close()
    tmp.rename(path)
    return path


def hand_written(database: Path, n_vars: int) -> float:
    """The same aggregates as one GROUP BY over the step's input (the mapped events), in-process."""
    import duckdb

    con = duckdb.connect(str(database))
    mapped = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'Material_user_events_mapped_%'"
    ).fetchall()[0][0]

    def filtered(select: str, where: str) -> str:  # agg(x) WHERE c  ->  agg(CASE WHEN c THEN x END)
        func, _, arg = select.partition("(")
        arg = "1" if arg == "*)" else arg[:-1]
        return f"{func}(CASE WHEN {where} THEN {arg} END)"

    aggs = ", ".join(f"{filtered(select, where)} AS {name}" for name, select, where in var_specs(n_vars))
    best = float("inf")
    for _ in range(2):
        con.execute("DROP TABLE IF EXISTS hand").fetchall()
        start = time.perf_counter()
        con.execute(
            f'CREATE TEMP TABLE hand AS SELECT user_main_id, {aggs} FROM profiles."{mapped}" '
            "WHERE user_main_id IS NOT NULL GROUP BY user_main_id"
        ).fetchall()
        best = min(best, time.perf_counter() - start)
    con.close()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="event rows of the one input (default 1M)")
    parser.add_argument("--counts", default="5,50,200", help="numbers of entity vars (the first is the base)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per count, interleaved; best reported")
    args = parser.parse_args(argv)
    rows = parse_size(args.rows)
    counts = [int(c) for c in args.counts.split(",")]
    start = time.perf_counter()
    raw = raw_events(rows)
    folder = Path(tempfile.mkdtemp(prefix="profiles_vars_"))
    print(
        f"one input of {human(rows)} event rows; entity vars: {', '.join(map(str, counts))}; "
        f"data ready in {time.perf_counter() - start:.1f}s",
        flush=True,
    )
    try:
        projects = {n: write_project(folder / f"p{n}", n) for n in counts}
        best: dict[int, dict[str, float]] = {}
        for attempt in range(args.repeat):
            for n in counts:
                db = fresh_copy(raw, folder / f"db_{n}.duckdb")
                site = write_site_config(folder / f"site_{n}.yaml", "bench", db)
                proc = run_process(
                    [
                        str(BIN / "profiles-dagster"),
                        "run",
                        "-p",
                        str(projects[n]),
                        "--site-config",
                        str(site),
                        "--end_time",
                        END_TIME,
                    ],
                    env=clean_env(),
                )
                steps, in_run = cli_steps(proc.stdout)
                var_step = sum(s for path, _, s in steps if path == "user/entity_vars")
                hand = hand_written(db, n) if attempt == 0 else best[n]["hand"]
                now = {
                    "vars": var_step,
                    "run": in_run or 0.0,
                    "process": proc.seconds,
                    "cpu": proc.cpu,
                    "hand": hand,
                    "mib": proc.peak_mib,
                }
                print(
                    f"   run {attempt + 1}, {n} vars: entity_vars {var_step:.2f}s, run {in_run:.2f}s, "
                    f"process {proc.seconds:.2f}s",
                    flush=True,
                )
                if n not in best:
                    best[n] = now
                else:
                    best[n] = {k: min(best[n][k], now[k]) for k in now}
                db.unlink(missing_ok=True)
        base = best[counts[0]]
        rows_out = []
        for n in counts:
            b = best[n]
            rows_out.append(
                [
                    n,
                    b["vars"],
                    f"{b['vars'] / base['vars']:.2f}x",
                    b["hand"],
                    f"{b['vars'] / b['hand']:.1f}x",
                    b["run"],
                    f"{b['run'] / base['run']:.2f}x",
                    b["process"],
                    f"{b['process'] / base['process']:.2f}x",
                    b["cpu"],
                    f"{b['cpu'] / base['cpu']:.2f}x",
                    b["mib"],
                ]
            )
        print()
        print(
            table(
                rows_out,
                [
                    "vars",
                    "entity_vars s",
                    f"vs {counts[0]}",
                    "hand GROUP BY s",
                    "step/hand",
                    "run s",
                    f"vs {counts[0]}",
                    "process s",
                    f"vs {counts[0]}",
                    "process CPU s",
                    f"vs {counts[0]}",
                    "peak MiB",
                ],
            )
        )
        print(
            f"(best of {args.repeat}; 'hand GROUP BY' = the same aggregates as one hand-written GROUP BY over "
            "the step's mapped input; benchmark took " + f"{time.perf_counter() - start:.0f}s)"
        )
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
