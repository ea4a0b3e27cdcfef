"""Incremental runs at scale: the example project over append-only inputs, a daily increment, exactness checked.

For each size, on generated event data (benchmarks/_common.py), with every input of a copy of the example
project declared append-only (`contract: is_append_only: true`):

1. a full `profiles-dagster run` over the first 99% of events (by time);
2. the last 1% added, a tenth of them late (dated inside the look-back window, before the previous run's
   newest event), then an incremental run;
3. a full run over the same data in a fresh database;
4. every stable view of 2 and 3 dumped, sorted, and compared cell by cell (in Python, independently of the
   product's SQL).

Prints both runs' per-step seconds and the ratio incremental / full (targets: <= 25% at 1M, <= 15% at 10M),
with the machine's load average (a shared machine's load changes wall times).

    python benchmarks/incremental.py                 # 1M events
    python benchmarks/incremental.py --sizes 1M,10M
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BIN,
    END_TIME,
    EXAMPLE,
    clean_env,
    cli_steps,
    fresh_copy,
    human,
    parse_size,
    raw_database,
    run_process,
    table,
    write_site_config,
)

TABLES = ("identifies", "tracks", "pages", "orders")
VIEWS = (
    "user_id_stitcher",
    "user_all",
    "user_high_value",
    "user_feature_view",
    "user_features_by_email",
    "high_value_feature_view",
    "high_value_by_email",
    "user_daily_orders",
)
LATE_WINDOW_HOURS = 72  # late rows land up to 3 days before the previous newest event (look-back: 4 days)


def project_copy(folder: Path) -> Path:
    """The example project with every input declared append-only (pb's contract key)."""
    target = folder / "project"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("pb_project.yaml", "profiles_dagster.yaml"):
        shutil.copy(EXAMPLE / name, target / name)
    shutil.copytree(EXAMPLE / "models", target / "models")
    inputs_file = target / "models" / "inputs.yaml"
    spec = yaml.safe_load(inputs_file.read_text(encoding="utf-8"))
    for inp in spec["inputs"]:
        inp.setdefault("contract", {})["is_append_only"] = True
    inputs_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return target


def split(raw: Path, folder: Path) -> tuple[Path, Path, dict[str, int], int]:
    """(database with the first 99% of events and the increment staged aside, database with all of them,
    increment rows per table, late rows)."""
    import duckdb

    base = fresh_copy(raw, folder / "base.duckdb")
    con = duckdb.connect(str(base))
    try:
        union = " UNION ALL ".join(f"SELECT timestamp FROM raw.{t}" for t in TABLES)
        cut = con.execute(f"SELECT quantile_disc(timestamp, 0.99) FROM ({union})").fetchall()[0][0]
        con.execute("CREATE SCHEMA stage")
        late = 0
        counts = {}
        for t in TABLES:
            con.execute(f"CREATE TABLE stage.{t} AS SELECT * FROM raw.{t} WHERE timestamp > TIMESTAMP '{cut}'")
            # a tenth of the increment is late: dated before the cut, inside the look-back window
            key = "order_id" if t == "orders" else "message_id"
            con.execute(
                f"UPDATE stage.{t} SET timestamp = TIMESTAMP '{cut}' - to_microseconds("
                f"CAST(hash({key} || 'at') % {LATE_WINDOW_HOURS * 3600 * 1_000_000} AS BIGINT) + 1) "
                f"WHERE hash({key}) % 10 = 0"
            )
            late += con.execute(f"SELECT count(*) FROM stage.{t} WHERE timestamp <= TIMESTAMP '{cut}'").fetchall()[0][0]
            counts[t] = con.execute(f"SELECT count(*) FROM stage.{t}").fetchall()[0][0]
            con.execute(f"DELETE FROM raw.{t} WHERE timestamp > TIMESTAMP '{cut}'")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    whole = fresh_copy(base, folder / "whole.duckdb")
    add_increment(whole)
    return base, whole, counts, late


def add_increment(database: Path) -> None:
    import duckdb

    con = duckdb.connect(str(database))
    try:
        for t in TABLES:
            con.execute(f"INSERT INTO raw.{t} SELECT * FROM stage.{t}")
        con.execute("CHECKPOINT")
    finally:
        con.close()


CPU: dict[str, float] = {}  # CPU seconds of each labelled run: steadier than wall time on a shared machine


def run(
    project: Path, database: Path, site: Path, label: str = ""
) -> tuple[float, list[tuple[str, int, float]], float | None]:
    write_site_config(site, "example", database)
    # the files just copied or written (the previous run, the added increment) reach the disk first: else the
    # run's first commit waits for the kernel to write back another process's pages (seconds at 10M), which a
    # daily run, a day after the previous one, never does
    os.sync()
    proc = run_process(
        [str(BIN / "profiles-dagster"), "run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME],
        env=clean_env(),
    )
    steps, in_run = cli_steps(proc.stdout)
    CPU[label] = proc.cpu
    return proc.seconds, steps, in_run


def dump(database: Path) -> dict[str, list[tuple]]:
    """Every stable view's rows, in one total order (ORDER BY ALL): equal multisets give equal lists."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return {v: con.execute(f"SELECT * FROM profiles.{v} ORDER BY ALL").fetchall() for v in VIEWS}
    finally:
        con.close()


def compare(a: Path, b: Path) -> list[list[object]]:
    got, want = dump(a), dump(b)
    rows = []
    for v in VIEWS:
        same = got[v] == want[v]
        differing = 0 if same else len(set(got[v]) ^ set(want[v]))
        rows.append([v, len(got[v]), len(want[v]), "identical" if same else f"DIFFERENT ({differing} rows)"])
    return rows


def bench(size: str, folder: Path) -> bool:
    events = parse_size(size)
    raw, counts, gen = raw_database(events)
    label = human(events)
    work = folder / label
    work.mkdir(parents=True, exist_ok=True)
    print(f"\n== {label}: {sum(counts.values()):,} events; raw data ready in {gen:.1f}s", flush=True)
    base, whole, increment, late = split(raw, work)
    print(f"   increment: {sum(increment.values()):,} rows ({late:,} late); load {os.getloadavg()[0]:.2f}", flush=True)
    project = project_copy(work)
    incr_db = fresh_copy(base, work / "incremental.duckdb")
    first, _, _ = run(project, incr_db, work / "site_incr.yaml")
    add_increment(incr_db)
    load_before = os.getloadavg()[0]
    second, second_steps, second_in_run = run(project, incr_db, work / "site_incr.yaml", "incremental")
    full_db = fresh_copy(whole, work / "full.duckdb")
    full, full_steps, full_in_run = run(project, full_db, work / "site_full.yaml", "full")
    print(f"   first run (99%): {first:.2f}s; load {load_before:.2f} before the incremental run", flush=True)
    full_by = {p: s for p, _, s in full_steps}
    rows = [[p, full_by.get(p, 0.0), s, (s / full_by[p]) if full_by.get(p) else 0.0] for p, _, s in second_steps]
    rows.append(
        ["(run, in process)", full_in_run or 0.0, second_in_run or 0.0, (second_in_run or 0) / (full_in_run or 1)]
    )
    rows.append(["(process, wall)", full, second, second / full])
    rows.append(["(process, CPU)", CPU["full"], CPU["incremental"], CPU["incremental"] / CPU["full"]])
    print(table(rows, ["step", "full s", "incremental s", "ratio"]))
    agreement = compare(incr_db, full_db)
    print(table(agreement, ["stable view", "incremental rows", "full rows", "cells"]))
    ok = all(r[3] == "identical" for r in agreement)
    print(
        f"   {label}: incremental / full = {second / full:.1%} (process), "
        f"{(second_in_run or 0) / (full_in_run or 1):.1%} (run); outputs {'identical' if ok else 'DIFFER'}"
    )
    for p in (base, whole, incr_db, full_db):
        p.unlink(missing_ok=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="pd_incr_"))
    started = time.perf_counter()
    ok = all([bench(s, folder) for s in args.sizes.split(",")])
    print(f"\ndone in {time.perf_counter() - started:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
