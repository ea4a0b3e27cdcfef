#!/usr/bin/env python3
"""Benchmark of the id stitcher on DuckDB against the in-memory limit and a naive SQL loop.

Usage: python benchmarks/stitcher.py [--sizes 100k,1M,10M] [--graphs random,chain,star,mix]
                                     [--naive-max-edges 1M] [--naive-minutes 5] [--db PATH]

For each graph family and size (in edges), input tables are generated in DuckDB by SQL (nothing
of the graph goes through Python) and the whole stitcher step, from the input tables to the
stitcher table (ids, main ids, first_seen_at, valid_at), runs three ways, side by side:

- ours: `run_stitcher`, connected components by randomized contraction in SQL;
- limit: the fastest pipeline we can write by hand for the same table (`_common.hand_stitch`): DuckDB
  numbers the distinct ids with their first-seen time and looks each row's ids up once, takes each
  linked id's first link time in one aggregate, scipy's in-memory connected_components labels the
  nodes from the rows' id pairs, numpy picks each component's earliest ids, and DuckDB hashes only
  those and writes all five columns in one statement. What an in-process stitcher could do at best
  on one machine, and what a warehouse cannot; it shares no code with ours;
- naive: min-label propagation in SQL (each pass: every node takes the smallest label among its
  neighbours; what dbt-id-stitching and most SQL stitchers do), one pass per hop. Capped: skipped
  above --naive-max-edges, stopped after --naive-minutes.

All results are compared (the whole table, main ids included). Then the incremental run: the
stitcher table of the input without its newest ~13% of rows (+15% edges) is extended with them
and compared with the full run. Python memory is traced (tracemalloc peak) per pipeline, in runs of
their own (not with --quick: tracing slows Python down, so timed runs go untraced): ours
stays flat, the limit pipeline holds the edge list in numpy.

Graph families: `random` (random bipartite anon/user pairs: a giant component and many small
ones), `chain` (chains of 10,000 hops), `star` (one star of half the edges and stars of 1,000
leaves: shared devices), `mix` (people with 1-4 devices, user ids and emails, page views,
tracks, identifies and orders, 1% shared devices: example_project/generate_data.py scaled up).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HandInput, hand_stitch

from profiles_dagster.sql.stitcher import PreviousGraph, StitcherStats, run_stitcher
from profiles_dagster.warehouse.duckdb import DuckDBSession

MAIN = "user_main_id"
BASE_DAYS = 365
CHAIN_HOPS = 10_000
INCREMENT = 0.15  # new edges relative to the base graph


class SkippedError(Exception):
    """A baseline stopped early (the naive loop over its time cap)."""


# ------------------------------------------------------------------------------ input generation


def _ts(seed: str, start_days: float, span_days: float) -> str:
    """A pseudo-random timestamp in [start, start + span) days after 2024-01-01."""
    span = max(1, int(span_days * 86400))
    return f"TIMESTAMP '2024-01-01' + to_seconds({int(start_days * 86400)} + (hash({seed}) % {span})::BIGINT)"


def _base_ts(seed: str) -> str:
    return _ts(seed, 0, BASE_DAYS)


def _new_ts(seed: str) -> str:
    return _ts(seed, BASE_DAYS, 7)


def gen_random(con: duckdb.DuckDBPyConnection, edges: int) -> None:
    """Rows of one anonymous id and one user id drawn from pools of `edges` ids each."""
    n = edges
    total = edges + int(edges * INCREMENT)
    con.execute(
        f"""CREATE OR REPLACE TABLE ev AS SELECT i AS rk,
        CASE WHEN i < {edges} THEN {_base_ts("i, 1")} ELSE {_new_ts("i, 1")} END AS ts,
        'a' || (hash(i, 2) % {n}) AS anon, 'u' || (hash(i, 3) % {n}) AS uid, NULL::VARCHAR AS email
        FROM range({total}) t(i)"""
    )


def gen_chain(con: duckdb.DuckDBPyConnection, edges: int) -> None:
    """Chains of CHAIN_HOPS hops: node k of a chain is an anon id (even k) or a user id (odd k), so
    each row (k, k+1) links one of each; names are hashed (unrelated to chain order). The increment
    adds 15% more chains and joins pairs of old chains end to start (chains of twice the hops)."""
    hops = min(CHAIN_HOPS, edges)
    chains = max(1, edges // hops)
    extra = max(1, round(chains * INCREMENT))

    def name(k: str) -> tuple[str, str]:
        """(as an anon id, as a user id): one of them NULL."""
        return (
            f"CASE WHEN ({k}) % 2 = 0 THEN 'n' || hash({k}, 7) END",
            f"CASE WHEN ({k}) % 2 = 1 THEN 'n' || hash({k}, 7) END",
        )

    con.execute(
        f"""CREATE OR REPLACE TABLE chain_rows AS
        SELECT c * {hops + 1} + h AS k1, c * {hops + 1} + h + 1 AS k2,
            CASE WHEN c < {chains} THEN {_base_ts("c, h")} ELSE {_new_ts("c, h")} END AS ts
        FROM range({chains + extra}) a(c), range({hops}) b(h)
        UNION ALL  -- the end of chain 2j meets the start of chain 2j + 1
        SELECT (2 * j) * {hops + 1} + {hops}, (2 * j + 1) * {hops + 1}, {_new_ts("j, 3")}
        FROM range({chains // 2}) t(j)"""
    )
    a1, u1 = name("k1")
    a2, u2 = name("k2")
    con.execute(
        f"""CREATE OR REPLACE TABLE ev AS SELECT row_number() OVER () AS rk, ts,
        coalesce({a1}, {a2}) AS anon, coalesce({u1}, {u2}) AS uid, NULL::VARCHAR AS email FROM chain_rows"""
    )
    con.execute("DROP TABLE chain_rows")


def gen_star(con: duckdb.DuckDBPyConnection, edges: int) -> None:
    """Half the edges in one star (a shared device with `edges / 2` users), the rest in stars of
    1,000 leaves; new rows add leaves to random hubs and link some hubs through a shared user."""
    giant = edges // 2
    hubs = max(1, (edges - giant) // 1000)
    extra = int(edges * INCREMENT)
    con.execute(
        f"""CREATE OR REPLACE TABLE ev AS
        SELECT i AS rk, {_base_ts("i, 1")} AS ts,
            CASE WHEN i < {giant} THEN 'giant-hub' ELSE 'hub' || ((i - {giant}) % {hubs}) END AS anon,
            'leaf' || i AS uid, NULL::VARCHAR AS email
        FROM range({edges}) t(i)
        UNION ALL
        SELECT {edges} + i, {_new_ts("i, 2")}, 'hub' || (hash(i, 3) % {hubs}),
            CASE WHEN hash(i, 4) % 10 = 0 THEN 'leaf' || (hash(i, 5) % {edges}) ELSE 'newleaf' || i END, NULL
        FROM range({extra}) t(i)"""
    )


def gen_mix(con: duckdb.DuckDBPyConnection, edges: int) -> None:
    """People as in example_project/generate_data.py: 1-4 devices (50/30/15/5%), a user id (6%: two),
    an email (10%: two); page views and anonymous tracks per device, identifies (device, user id,
    email 75%) and signed-in tracks on 92% of devices, orders (user id, email), 1% of people sign in
    on a neighbour's device (shared devices). About 4 distinct edges per person. New people (and
    some known people on new devices) arrive in the increment."""
    people = max(1, edges // 4)
    extra = int(people * INCREMENT)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE people AS
        SELECT p, p >= {people} AS late,
            1 + CASE WHEN hash(p, 1) % 100 < 50 THEN 0 WHEN hash(p, 1) % 100 < 80 THEN 1
                     WHEN hash(p, 1) % 100 < 95 THEN 2 ELSE 3 END AS devices,
            hash(p, 2) % 100 < 6 AS two_users, hash(p, 3) % 100 < 10 AS two_emails,
            hash(p, 4) % 100 < 1 AS shares, hash(p, 9) % 100 < 30 AS comes_back,
            (hash(p, 5) % {BASE_DAYS - 120})::INT AS start_day
        FROM range({people + extra}) t(p)"""
    )
    # a late person who is "returning" is a known person (id p - people) on a new device
    who = f"CASE WHEN late AND comes_back THEN p - {people} ELSE p END"
    anon = "'d' || p || '-' || d"
    uid = f"'u' || {who}"
    email = f"'e' || {who} || '@example.com'"

    def when(seed: str) -> str:
        day = f"to_days((start_day + hash({seed}, 99) % 120)::INT)"
        return f"CASE WHEN late THEN {_new_ts(seed)} ELSE {_ts(seed, 0, 1)} + {day} END"

    parts = [
        # page views (3) and anonymous tracks (1) per device: ids without links
        f"SELECT {when('p, d, v')} AS ts, {anon} AS anon, NULL AS uid, NULL AS email "
        "FROM people, range(devices) a(d), range(4) b(v)",
        # identifies on 92% of devices, email 75% of the time
        f"SELECT {when('p, d, 21')}, {anon}, {uid}, CASE WHEN hash(p, d, 22) % 100 < 75 THEN {email} END "
        "FROM people, range(devices) a(d) WHERE d = 0 OR hash(p, d, 23) % 100 < 92",
        # signed-in tracks (3 per identified device: duplicate edges)
        f"SELECT {when('p, d, v, 31')}, {anon}, {uid}, NULL FROM people, range(devices) a(d), range(3) b(v) "
        "WHERE d = 0 OR hash(p, d, 23) % 100 < 92",
        # a second user id / email on the main device
        f"SELECT {when('p, 41')}, 'd' || p || '-0', {uid} || 'b', {email} FROM people WHERE two_users",
        f"SELECT {when('p, 42')}, 'd' || p || '-0', {uid}, 'x' || {email} FROM people WHERE two_emails",
        # orders: user id and email (twice)
        f"SELECT {when('p, v, 51')}, NULL, {uid}, {email} FROM people, range(2) b(v)",
        # shared devices: 1% sign in on the next person's main device
        f"SELECT {when('p, 61')}, 'd' || (p + 1) || '-0', {uid}, NULL FROM people WHERE shares",
    ]
    con.execute(
        "CREATE OR REPLACE TABLE ev AS SELECT row_number() OVER () AS rk, ts, anon, uid, email FROM ("
        + " UNION ALL ".join(parts)
        + ")"
    )
    con.execute("DROP TABLE people")


GRAPHS = {"random": gen_random, "chain": gen_chain, "star": gen_star, "mix": gen_mix}


def observations(table: str = "ev", before: str | None = None) -> exp.Query:
    """The stitcher's input as the compiler builds it: one row per input row, its ids in slots."""
    columns = (("anon", "anonymous_id"), ("uid", "user_id"), ("email", "email"))
    slots = ", ".join(
        f"CAST('{id_type}' AS VARCHAR) AS other_id_type_{k}, {column} AS other_id_{k}"
        for k, (column, id_type) in enumerate(columns, start=1)
    )
    query = f"SELECT ts AS occurred_at, {slots} FROM {table}"
    if before:
        query += f" WHERE ts < {before}"
    return sqlglot.parse_one(query, read="duckdb")


# -------------------------------------------------------------------------------- baselines


def naive_components(con: duckdb.DuckDBPyConnection, deadline: float):
    """Min-label propagation: one SQL pass per hop until no label changes."""

    def find(scratch, edges: exp.Table, *, max_rounds: int):
        e = edges.sql("duckdb")
        lab = scratch.create("naive_0", sqlglot.parse_one(f"SELECT u AS x, u AS p FROM {e} UNION SELECT v, v FROM {e}"))
        passes = 0
        while True:
            if time.perf_counter() > deadline:
                raise SkippedError(f"stopped after {passes} passes")
            passes += 1
            nxt = scratch.create(
                f"naive_{passes}",
                sqlglot.parse_one(
                    f"""SELECT l.x, least(l.p, coalesce(min(n.p), l.p)) AS p
                    FROM {lab.sql("duckdb")} l
                    LEFT JOIN (SELECT u AS a, v AS b FROM {e} UNION ALL SELECT v, u FROM {e}) d ON d.a = l.x
                    LEFT JOIN {lab.sql("duckdb")} n ON n.x = d.b
                    GROUP BY l.x, l.p""",
                    read="duckdb",
                ),
            )
            changed = con.execute(
                f"SELECT count(*) FROM {nxt.sql('duckdb')} a JOIN {lab.sql('duckdb')} b ON a.x = b.x WHERE a.p <> b.p"
            ).fetchone()[0]
            scratch.drop(f"naive_{passes - 1}")
            lab = nxt
            if not changed:
                return sqlglot.select("x", "p").from_(lab), passes, ()

    return find


# ------------------------------------------------------------------------------------ running


@dataclass
class Timed:
    seconds: float | None
    stats: StitcherStats | None = None
    python_peak_mb: float = 0.0
    note: str = ""
    cpu: float = 0.0  # user + system seconds of the process (DuckDB's threads included)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stitch(con, query: exp.Query, target: str, trace: bool = False, **kwargs) -> Timed:
    """One stitcher run. ``trace``: Python memory traced (tracemalloc slows Python down, so the timed runs
    go without it and a second run measures memory)."""
    con.execute(f'DROP TABLE IF EXISTS "{target}"')
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), _cpu()
    try:
        stats = run_stitcher(
            DuckDBSession(con, "main"),
            observations=query,
            target=exp.table_(target, quoted=True),
            main_id_column=MAIN,
            scratch_prefix=f"_bench_{target}",
            max_rounds=60,
            **kwargs,
        )
    except SkippedError as exc:
        return Timed(None, note=str(exc))
    finally:
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    return Timed(seconds, stats, peak / 2**20, cpu=cpu)


def hand_limit(con, target: str, trace: bool = False) -> Timed:
    """The floor: pb's whole stitcher table by hand (benchmarks/_common.py's hand_stitch)."""
    con.execute(f'DROP TABLE IF EXISTS "{target}"')
    ids = [("anonymous_id", "anon"), ("user_id", "uid"), ("email", "email")]
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), _cpu()
    try:
        phases = hand_stitch(con, [HandInput("ev", "ts", ids)], f'"{target}"', MAIN)
    finally:
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    phases_text = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
    return Timed(seconds, None, peak / 2**20, note=phases_text, cpu=cpu)


def same(con, a: str, b: str) -> bool:
    diff = con.execute(
        f'SELECT (SELECT count(*) FROM (SELECT * FROM "{a}" EXCEPT ALL SELECT * FROM "{b}")) + '
        f'(SELECT count(*) FROM (SELECT * FROM "{b}" EXCEPT ALL SELECT * FROM "{a}"))'
    ).fetchone()[0]
    return diff == 0


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in "kmg" else text) * scale)


def fmt_size(n: int) -> str:
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:g}{unit}"
    return str(n)


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def bench(con, graph: str, edges: int, args) -> dict:
    started = time.perf_counter()
    GRAPHS[graph](con, edges)
    generate = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM ev").fetchone()[0]
    cut = f"TIMESTAMP '2024-01-01' + INTERVAL {BASE_DAYS} DAY"
    everything = observations()
    # side by side: ours, the limit, ours again (order effects), the naive loop
    ours = stitch(con, everything, "ours")
    limit = hand_limit(con, "limit")
    again = ours if args.quick else stitch(con, everything, "ours_again", trace=True)
    limit_memory = limit if args.quick else hand_limit(con, "limit_again", trace=True)
    naive = Timed(None, note=f"skipped above {fmt_size(args.naive_max_edges)} edges")
    if edges <= args.naive_max_edges:
        deadline = time.perf_counter() + args.naive_minutes * 60
        naive = stitch(con, everything, "naive", components=naive_components(con, deadline))
        if naive.seconds is not None and naive.note == "":
            naive.note = f"{naive.stats.rounds} passes"
        elif naive.seconds is None:
            naive.note = f"{naive.note} (> {args.naive_minutes:g} min)"
    ok = same(con, "ours", "limit") and (args.quick or same(con, "ours", "ours_again"))
    if naive.seconds is not None:
        ok = ok and same(con, "ours", "naive")
    # incremental: the table of the base rows, extended by the newest ones
    if args.quick:
        inc, inc_ok = ours, True
    else:
        base = stitch(con, observations(before=cut), "base")
        previous = PreviousGraph(exp.table_("base", quoted=True), base.stats.checkpoint)
        inc = stitch(con, everything, "incremental", previous=previous)
        inc_ok = inc.stats.mode == "incremental" and same(con, "ours", "incremental")
    full = min(t.seconds for t in (ours, again))
    for name in ("ours", "limit", "ours_again", "limit_again", "naive", "base", "incremental"):
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
    con.execute("DROP TABLE ev")
    con.execute("CHECKPOINT")
    return {
        "graph": graph,
        "edges": edges,
        "rows": rows,
        "generate": generate,
        "stats": ours.stats,
        "ours": full,
        "ours_runs": (ours.seconds, again.seconds),
        "limit": limit.seconds,
        "ours_cpu": ours.cpu,
        "limit_cpu": limit.cpu,
        "load": os.getloadavg()[0],
        "limit_phases": limit.note,
        "naive": naive.seconds,
        "naive_note": naive.note,
        "ok": ok,
        "incremental": inc.seconds,
        "inc_stats": inc.stats,
        "inc_ok": inc_ok,
        "py_ours": max(ours.python_peak_mb, again.python_peak_mb),
        "py_limit": limit_memory.python_peak_mb,
        "py_inc": inc.python_peak_mb,
        "phases": dict(ours.stats.seconds),
        "inc_phases": dict(inc.stats.seconds),
    }


def print_table(results: list[dict]) -> None:
    head = (
        f"{'graph':<7} {'edges':>6} {'ids':>7} {'rows':>7} {'rounds':>6} {'ours s':>8} {'limit s':>8} "
        f"{'ours/limit':>10} {'naive s':>9} {'naive/ours':>10} {'incr s':>7} {'incr/full':>9} "
        f"{'py MB ours/limit':>16} {'same':>5} {'CPU ours/limit':>15} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        s = r["stats"]
        naive_ratio = f"{r['naive'] / r['ours']:.1f}x" if r["naive"] else "-"
        print(
            f"{r['graph']:<7} {fmt_size(r['edges']):>6} {fmt_size(s.ids):>7} {fmt_size(r['rows']):>7} "
            f"{s.rounds:>6} {fmt_s(r['ours']):>8} {fmt_s(r['limit']):>8} {r['ours'] / r['limit']:>9.2f}x "
            f"{fmt_s(r['naive']):>9} {naive_ratio:>10} {fmt_s(r['incremental']):>7} "
            f"{r['incremental'] / r['ours']:>8.0%} {r['py_ours']:>7.1f} / {r['py_limit']:<6.1f} "
            f"{'yes' if r['ok'] and r['inc_ok'] else 'NO':>5} "
            f"{r['ours_cpu']:>6.1f}/{r['limit_cpu']:<5.1f}{r['ours_cpu'] / r['limit_cpu']:>4.2f}x {r['load']:>5.1f}"
        )
    print("\nlimit phases (s):")
    for r in results:
        print(f"  {r['graph']:<7} {fmt_size(r['edges']):>5}: {r['limit_phases']}")
    notes = [f"{r['graph']} {fmt_size(r['edges'])}: naive {r['naive_note']}" for r in results if r["naive_note"]]
    if notes:
        print("\nnaive min-label loop: " + "; ".join(notes))
    print("\nphases (s), full run | incremental run (+15% edges):")
    for r in results:
        full = " ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
        inc = " ".join(f"{k} {v:.2f}" for k, v in r["inc_phases"].items())
        s, i = r["stats"], r["inc_stats"]
        print(
            f"  {r['graph']:<7} {fmt_size(r['edges']):>5}: {full} | {inc}  "
            f"(full: {fmt_size(s.edges)} id pairs, {fmt_size(s.internal_edges)} star edges; incremental: read "
            f"{fmt_size(i.observations)} obs, {fmt_size(i.new_ids)} new ids, {i.changed_main_ids} main ids changed)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M,10M", help="edges per graph, e.g. 100k,1M,10M")
    parser.add_argument("--graphs", default=",".join(GRAPHS), help=f"of {', '.join(GRAPHS)}")
    parser.add_argument("--naive-max-edges", default="1M", help="skip the naive loop above this many edges")
    parser.add_argument("--naive-minutes", type=float, default=5.0, help="stop the naive loop after this long")
    parser.add_argument("--db", help="DuckDB file (default: a temporary one)")
    parser.add_argument(
        "--quick", action="store_true", help="ours and the limit once each, no incremental run (large sizes)"
    )
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    args = parser.parse_args(argv)
    args.naive_max_edges = parse_size(args.naive_max_edges)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    graphs = [g.strip() for g in args.graphs.split(",")]
    for g in graphs:
        if g not in GRAPHS:
            parser.error(f"unknown graph '{g}'; choose from {', '.join(GRAPHS)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or str(Path(tmp) / "bench.duckdb")
        con = duckdb.connect(path)
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        print(f"DuckDB {duckdb.__version__}, {threads} threads, file {path}", flush=True)
        results = []
        for size in sizes:
            for graph in graphs:
                r = bench(con, graph, size, args)
                results.append(r)
                print(
                    f"  {graph} {fmt_size(size)}: ours {fmt_s(r['ours'])}s limit {fmt_s(r['limit'])}s "
                    f"(CPU {r['ours_cpu']:.2f}s / {r['limit_cpu']:.2f}s) naive {fmt_s(r['naive'])}s "
                    f"incremental {fmt_s(r['incremental'])}s "
                    f"{'ok' if r['ok'] and r['inc_ok'] else 'MISMATCH'} (load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        con.close()
    print()
    print_table(results)
    return 0 if all(r["ok"] and r["inc_ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
