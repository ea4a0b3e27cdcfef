"""End to end at scale: the example project through `profiles-dagster run` against a hand-written baseline.

For each size, on generated event data (benchmarks/_common.py; `example` = the committed CSVs):

* product: `profiles-dagster run -p <copy of example_project> --site-config ... --end_time ...`,
  a fresh process on a fresh copy of the raw DuckDB file, as a user would run it;
* baseline: a fresh process running plain DuckDB SQL plus scipy's in-memory connected_components
  (no framework), computing the same id graph, entity vars, feature views and cohort;

then checks both agree (id -> main id mapping, every value of the feature views, cohort
membership) and prints wall times, the ratio, each process's peak memory and the product's
per-step breakdown (from the CLI's step lines).

    python benchmarks/e2e.py                    # 100k and 1M events
    python benchmarks/e2e.py --sizes 1M,10M     # 10M: ~1 min to generate (cached), a few minutes to run
    python benchmarks/e2e.py --sizes example    # the committed CSVs (also checks the baseline itself)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _common import (
    BIN,
    END_TIME,
    EXAMPLE,
    PYTHON,
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

# --------------------------------------------------------------------------- the baseline

# the example project's id_types and input ids, written by hand
_CLEAN = {
    "user_id": "CASE WHEN {v} = '' OR {v} = '0' THEN NULL ELSE {v} END",
    "anonymous_id": "CASE WHEN {v} = '' OR regexp_full_match({v}, '(undefined|null|unknown|test.*)') THEN NULL "
    "ELSE {v} END",
    "email": "CASE WHEN {v} = '' OR NOT regexp_full_match({v}, '[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{{2,}}') "
    "OR {v} = 'noreply@example.com' THEN NULL ELSE {v} END",
}
_IDS = {  # input -> [(id type, select)]
    "identifies": [("user_id", "user_id"), ("anonymous_id", "anonymous_id"), ("email", "lower(trim(email))")],
    "tracks": [("user_id", "user_id"), ("anonymous_id", "anonymous_id")],
    "pages": [("anonymous_id", "anonymous_id")],
    "orders": [("user_id", "user_id"), ("email", "lower(trim(email))")],
}
_KEEP = {  # the columns the vars of either project read
    "identifies": "email",
    "tracks": "anonymous_id, event",
    "pages": "path",
    "orders": "order_id, amount, status",
}
FEATURES = sorted(
    [
        "active_order_days",
        "avg_order_value",
        "days_since_last_order",
        "days_since_last_seen",
        "distinct_devices",
        "first_order_amount",
        "first_seen_at",
        "last_order_amount",
        "last_seen_at",
        "latest_email",
        "order_count",
        "page_views",
        "total_revenue",
    ]
)
_SALT = "fe971b24-9572-4005-b22f-351e9c09274d"


def _hand_rows(con, phase) -> None:
    """Both projects' common part by hand: per input its cleaned ids and the columns the vars read (one scan),
    pb's whole stitcher table (`_common.hand_stitch`: DuckDB + scipy), `base.all`, and each row with its profile
    (m_<input>: the main id of its first id, a row's ids sharing one profile; one integer join per input)."""
    from _common import HandInput, hand_stitch

    def sql(text: str):
        return con.execute(text).fetchall()

    sql("CREATE SCHEMA base")
    inputs = []
    for name, ids in _IDS.items():
        cleaned = ", ".join(_CLEAN[t].format(v=f"({s})") + f" AS id{n}" for n, (t, s) in enumerate(ids))
        sql(f"CREATE TEMP TABLE k_{name} AS SELECT timestamp AS ts, {_KEEP[name]}, {cleaned} FROM raw.{name}")
        keep = [c.split(" AS ")[-1].strip() for c in _KEEP[name].split(",")]
        inputs.append(HandInput(f"k_{name}", "ts", [(t, f"id{n}") for n, (t, _) in enumerate(ids)], keep))
    phase("clean ids (SQL)")
    for step, seconds in hand_stitch(con, inputs, "base.id_graph", rows=True).items():
        phase(f"stitcher: {step}", seconds)
    for name in _IDS:
        sql(f"DROP TABLE k_{name}")
    sql("CREATE TABLE base.all AS SELECT DISTINCT user_main_id FROM base.id_graph")
    for n, (name, ids) in enumerate(_IDS.items()):
        first = "coalesce(" + ", ".join(f"r.node{k}" for k in range(len(ids))) + ")"
        sql(f"CREATE TEMP TABLE m_{name} AS SELECT m.main, r.* FROM r_{n} r JOIN node_main m ON m.node = {first}")
        sql(f"DROP TABLE r_{n}")
    phase("rows -> profiles (SQL)")


def _views(con, features: list[str], cohort: str, cohort_vars: str, by: dict[str, str], cohort_by: dict[str, str]):
    """The default feature view, views keyed by other ids, the cohort's views (its own vars first)."""

    def sql(text: str):
        return con.execute(text).fetchall()

    cols = ", ".join(features)
    f_cols = ", ".join(f"f.{c}" for c in features)
    sql(f"CREATE TABLE base.feature_view AS SELECT user_main_id, {cols} FROM base.var_table")
    for id_type, view in by.items():
        sql(
            f"CREATE TABLE base.{view} AS SELECT g.other_id AS {id_type}, {f_cols} FROM base.id_graph g "
            f"JOIN base.feature_view f USING (user_main_id) WHERE g.other_id_type = '{id_type}'"
        )
    own = ", ".join(c.split(" AS ")[-1].strip() for c in cohort_vars.split(", "))
    own_values = ", ".join(
        f"coalesce(o.{c}, 0) AS {c}" if c.endswith("_orders") else f"o.{c}" for c in own.split(", ")
    )  # count(*) vars default to 0
    sql(
        f"CREATE TABLE base.{cohort}_feature_view AS SELECT c.user_main_id, {own_values}, {f_cols} "
        f"FROM base.{cohort} c "
        f"LEFT JOIN ({cohort_vars_sql(cohort_vars)}) o ON o.main = c.user_main_id "
        "JOIN base.feature_view f ON f.user_main_id = c.user_main_id"
    )
    for id_type, view in cohort_by.items():
        sql(
            f"CREATE TABLE base.{view} AS SELECT g.other_id AS {id_type}, {own}, {f_cols} FROM base.id_graph g "
            f"JOIN base.{cohort}_feature_view f USING (user_main_id) WHERE g.other_id_type = '{id_type}'"
        )


def cohort_vars_sql(select: str) -> str:
    return f"SELECT main, {select} FROM m_orders GROUP BY main"


def baseline(database: str, end_time: str, project: str = "example") -> dict[str, float]:
    """Hand-written: DuckDB SQL + scipy connected_components. Writes schema `base`; returns phase seconds."""
    import duckdb

    end = "TIMESTAMP '" + end_time.replace("T", " ").rstrip("Z") + "'"
    con = duckdb.connect(database)
    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def sql(text: str):
        return con.execute(text).fetchall()

    def phase(name: str, seconds: float | None = None) -> None:
        now = time.perf_counter()
        if seconds is None:
            phases[name] = now - clock[0]
        else:  # a part of a phase timed inside
            phases[name] = seconds
        clock[0] = now

    _hand_rows(con, phase)
    if project == "rich":
        _rich_vars(con, end)
    else:
        _example_vars(con, end)
    phase("entity vars (SQL)")
    spec = PROJECTS[project]
    _views(con, spec["features"], spec["cohort"], spec["cohort_vars"], spec["by"], spec["cohort_by"])
    phase("views + cohort (SQL)")
    con.close()
    return phases


def _example_vars(con, end: str) -> None:
    con.execute(
        f"""CREATE TABLE base.var_table AS
        WITH tr AS (SELECT main, min(ts) AS first_seen_at, max(ts) AS last_seen_at,
                           count(DISTINCT anonymous_id) AS distinct_devices FROM m_tracks GROUP BY main),
             pg AS (SELECT main, count(*) AS page_views FROM m_pages GROUP BY main),
             idf AS (SELECT main, arg_max(email, ts) AS latest_email FROM m_identifies
                     WHERE email IS NOT NULL AND email LIKE '%@%' GROUP BY main),
             od AS (SELECT main, count(*) AS order_count, sum(amount) AS total_revenue,
                           arg_min(amount, (ts, order_id)) AS first_order_amount, max(ts) AS last_order_at,
                           arg_max(amount, (ts, order_id)) AS last_order_amount
                    FROM m_orders WHERE status = 'completed' GROUP BY main),
             dd AS (SELECT main, count(DISTINCT CAST(ts AS DATE)) AS active_order_days
                    FROM m_orders WHERE status = 'completed' AND node0 IS NOT NULL GROUP BY main),
             v AS (SELECT a.user_main_id, tr.first_seen_at, tr.last_seen_at, tr.distinct_devices,
                          coalesce(pg.page_views, 0) AS page_views, idf.latest_email,
                          coalesce(od.order_count, 0) AS order_count, coalesce(od.total_revenue, 0) AS total_revenue,
                          od.first_order_amount, od.last_order_at, od.last_order_amount,
                          coalesce(dd.active_order_days, 0) AS active_order_days
                   FROM base.all a LEFT JOIN tr ON tr.main = a.user_main_id LEFT JOIN pg ON pg.main = a.user_main_id
                   LEFT JOIN idf ON idf.main = a.user_main_id LEFT JOIN od ON od.main = a.user_main_id
                   LEFT JOIN dd ON dd.main = a.user_main_id)
        SELECT *, date_diff('day', last_seen_at, {end}) AS days_since_last_seen,
               total_revenue / nullif(order_count, 0) AS avg_order_value,
               date_diff('day', last_order_at, {end}) AS days_since_last_order FROM v"""
    ).fetchall()
    con.execute("CREATE TABLE base.high_value AS SELECT user_main_id FROM base.var_table WHERE total_revenue >= 300")


def _rich_vars(con, end: str) -> None:
    """benchmarks/rich_project's vars by hand (first/last by arg_min/arg_max: timestamps are distinct)."""
    con.execute(
        f"""CREATE TABLE base.var_table AS
        WITH tr AS (SELECT main, min(ts) AS first_seen_at, max(ts) AS last_seen_at, count(*) AS track_count,
                           count(DISTINCT event) AS distinct_events FROM m_tracks GROUP BY main),
             pg AS (SELECT main, count(*) AS page_views, count(DISTINCT path) AS distinct_paths,
                           arg_min(path, ts) AS first_page FROM m_pages GROUP BY main),
             idf AS (SELECT main, arg_max(email, ts) AS latest_email FROM m_identifies
                     WHERE email IS NOT NULL AND email LIKE '%@%' GROUP BY main),
             od AS (SELECT main, count(*) AS order_count, sum(amount) AS total_revenue, max(amount) AS max_order_amount,
                           arg_min(amount, (ts, order_id)) AS first_order_amount,
                           arg_max(amount, (ts, order_id)) AS last_order_amount
                    FROM m_orders WHERE status = 'completed' GROUP BY main),
             dd AS (SELECT main, count(DISTINCT CAST(ts AS DATE)) AS active_order_days
                    FROM m_orders WHERE status = 'completed' AND node0 IS NOT NULL GROUP BY main),
             v AS (SELECT a.user_main_id, tr.first_seen_at, tr.last_seen_at, coalesce(tr.track_count, 0) AS track_count,
                          tr.distinct_events, coalesce(pg.page_views, 0) AS page_views, pg.distinct_paths,
                          pg.first_page, idf.latest_email,
                          coalesce(od.order_count, 0) AS order_count, coalesce(od.total_revenue, 0) AS total_revenue,
                          od.max_order_amount, od.first_order_amount, od.last_order_amount,
                          coalesce(dd.active_order_days, 0) AS active_order_days
                   FROM base.all a LEFT JOIN tr ON tr.main = a.user_main_id LEFT JOIN pg ON pg.main = a.user_main_id
                   LEFT JOIN idf ON idf.main = a.user_main_id LEFT JOIN od ON od.main = a.user_main_id
                   LEFT JOIN dd ON dd.main = a.user_main_id)
        SELECT *, CAST({end} AS DATE) - CAST(last_seen_at AS DATE) AS days_since_last_seen,
               track_count + page_views AS engagement,
               total_revenue / nullif(order_count, 0) AS avg_order_value,
               total_revenue / nullif(active_order_days, 0) AS revenue_per_active_day FROM v"""
    ).fetchall()
    con.execute(
        "CREATE TABLE base.big_spenders AS SELECT user_main_id FROM base.var_table "
        "WHERE total_revenue >= 200 AND order_count >= 2"
    ).fetchall()


_EXAMPLE_FEATURES = sorted(FEATURES)
_RICH_FEATURES = sorted(
    [
        "active_order_days",
        "avg_order_value",
        "days_since_last_seen",
        "distinct_events",
        "distinct_paths",
        "engagement",
        "first_order_amount",
        "first_page",
        "first_seen_at",
        "last_order_amount",
        "last_seen_at",
        "latest_email",
        "max_order_amount",
        "order_count",
        "page_views",
        "revenue_per_active_day",
        "total_revenue",
        "track_count",
    ]
)
PROJECTS: dict[str, dict] = {
    "example": {
        "folder": EXAMPLE,
        "connection": "example",
        "features": _EXAMPLE_FEATURES,
        "cohort": "high_value",
        "cohort_vars": "max(amount) FILTER (WHERE status = 'completed') AS hv_max_order_amount",
        "by": {"email": "features_by_email"},
        "cohort_by": {"email": "high_value_by_email"},
        "views": [  # (what, product view, baseline table, key)
            ("feature view", "user_feature_view", "feature_view", "user_main_id"),
            ("feature view by email", "user_features_by_email", "features_by_email", "email"),
            ("cohort feature view", "high_value_feature_view", "high_value_feature_view", "user_main_id"),
            ("cohort view by email", "high_value_by_email", "high_value_by_email", "email"),
        ],
    },
    "rich": {
        "folder": Path(__file__).resolve().parent / "rich_project",
        "connection": "rich",
        "features": _RICH_FEATURES,
        "cohort": "big_spenders",
        "cohort_vars": "count(*) FILTER (WHERE status = 'returned') AS bs_returned_orders, "
        "min(ts) FILTER (WHERE status = 'returned') AS bs_first_return_at",
        "by": {"email": "features_by_email", "user_id": "features_by_user_id"},
        "cohort_by": {"email": "big_spenders_feature_view_with_email", "user_id": "big_spenders_by_user_id"},
        "views": [
            ("feature view", "user_feature_view", "feature_view", "user_main_id"),
            ("feature view by email", "user_features_by_email", "features_by_email", "email"),
            ("feature view by user_id", "user_features_by_user_id", "features_by_user_id", "user_id"),
            ("cohort feature view", "big_spenders_feature_view", "big_spenders_feature_view", "user_main_id"),
            (
                "cohort view by email",
                "big_spenders_feature_view_with_email",
                "big_spenders_feature_view_with_email",
                "email",
            ),
            ("cohort view by user_id", "big_spenders_by_user_id", "big_spenders_by_user_id", "user_id"),
        ],
    },
}


# --------------------------------------------------------------------------- agreement

_NUMERIC = ("DECIMAL", "DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT")


def compare(product_db: Path, baseline_db: Path, project: str = "example") -> list[list[object]]:
    """[what, rows, mismatches] per output: 0 mismatches means the two agree value by value."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{product_db}' AS p (READ_ONLY)").fetchall()
    con.execute(f"ATTACH '{baseline_db}' AS b (READ_ONLY)").fetchall()

    def one(text: str) -> int:
        return int(con.execute(text).fetchall()[0][0])

    def sym(a: str, b: str) -> int:
        return one(f"SELECT count(*) FROM (({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a}))")

    spec = PROJECTS[project]
    cohort = spec["cohort"]
    out = []
    cols = "user_main_id, other_id, other_id_type, valid_at, first_seen_at"
    out.append(
        [
            "stitcher table (all five columns)",
            one("SELECT count(*) FROM p.profiles.user_id_stitcher"),
            sym(f"SELECT {cols} FROM p.profiles.user_id_stitcher", f"SELECT {cols} FROM b.base.id_graph"),
        ]
    )
    out.append(
        [
            "cohort membership",
            one(f"SELECT count(*) FROM p.profiles.user_{cohort}"),
            sym(f"SELECT user_main_id FROM p.profiles.user_{cohort}", f"SELECT user_main_id FROM b.base.{cohort}"),
        ]
    )
    for what, view, base, key in spec["views"]:
        columns = con.execute(f"DESCRIBE p.profiles.{view}").fetchall()
        names = [c[0] for c in columns]
        expected = [c[0] for c in con.execute(f"DESCRIBE b.base.{base}").fetchall()]
        if names != expected:
            out.append([f"{what}: columns", len(names), f"{names} != {expected}"])
            continue
        differs = []
        for name, kind, *_ in columns:
            if name == key:
                continue
            a, b = f'x."{name}"', f'y."{name}"'
            if kind.upper().startswith(_NUMERIC):
                fa, fb = f"CAST({a} AS DOUBLE)", f"CAST({b} AS DOUBLE)"
                differs.append(f"(({a} IS NULL) <> ({b} IS NULL) OR abs({fa} - {fb}) > 1e-9 * greatest(1, abs({fa})))")
            else:
                differs.append(f"{a} IS DISTINCT FROM {b}")
        mismatches = one(
            f"SELECT count(*) FROM p.profiles.{view} x FULL JOIN b.base.{base} y ON x.{key} = y.{key} "
            f"WHERE x.{key} IS NULL OR y.{key} IS NULL OR {' OR '.join(differs)}"
        )
        out.append([what, one(f"SELECT count(*) FROM p.profiles.{view}"), mismatches])
    con.close()
    return out


# --------------------------------------------------------------------------- the driver


def _project_copy(folder: Path, source: Path) -> Path:
    """The project's definition files (not its data or database) in a scratch folder."""
    target = folder / "project"
    target.mkdir(parents=True)
    for name in ("pb_project.yaml", "profiles_dagster.yaml"):
        shutil.copy(source / name, target / name)
    shutil.copytree(source / "models", target / "models")
    return target


def _example_raw(folder: Path) -> tuple[Path, dict[str, int], float]:
    import duckdb

    sys.path.insert(0, str(EXAMPLE.parent))
    from example_project.loading import load_raw

    path = folder / "example_raw.duckdb"
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        counts = load_raw(con, EXAMPLE / "data")
    finally:
        con.close()
    return path, counts, time.perf_counter() - start


def bench_size(size: str, folder: Path, repeat: int, project_name: str = "example") -> dict[str, object]:
    if size == "example":
        raw, counts, gen_seconds = _example_raw(folder)
    else:
        raw, counts, gen_seconds = raw_database(parse_size(size))
    events = sum(counts.values())
    label = "example" if size == "example" else human(parse_size(size))
    print(
        f"\n== {label}: {events:,} events ({', '.join(f'{k} {v:,}' for k, v in counts.items())}); "
        f"raw data ready in {gen_seconds:.1f}s",
        flush=True,
    )
    spec = PROJECTS[project_name]
    project = _project_copy(folder / label, spec["folder"])
    runs = []
    for attempt in range(repeat):
        base_db = fresh_copy(raw, folder / label / f"baseline_{attempt}.duckdb")
        base = run_process(
            [PYTHON, __file__, "--baseline", str(base_db), "--end-time", END_TIME, "--project", project_name],
            env=clean_env(),
        )
        base.extra = json.loads(base.stdout.strip().splitlines()[-1])
        prod_db = fresh_copy(raw, folder / label / f"product_{attempt}.duckdb")
        site = write_site_config(folder / label / f"site_{attempt}.yaml", spec["connection"], prod_db)
        prod = run_process(
            [
                str(BIN / "profiles-dagster"),
                "run",
                "-p",
                str(project),
                "--site-config",
                str(site),
                "--end_time",
                END_TIME,
            ],
            env=clean_env(),
        )
        steps, in_run = cli_steps(prod.stdout)
        prod.extra = {"steps": steps, "in_run": in_run}
        print(
            f"   run {attempt + 1}: baseline {base.seconds:.2f}s ({base.cpu:.2f}s CPU), product {prod.seconds:.2f}s "
            f"({prod.cpu:.2f}s CPU): {prod.seconds / base.seconds:.2f}x wall, {prod.cpu / base.cpu:.2f}x CPU; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        runs.append((base, prod, base_db, prod_db))
    agreement = compare(runs[-1][3], runs[-1][2], project_name)
    for _, _, b, p in runs:  # keep disk use bounded at 10M
        b.unlink(missing_ok=True)
        p.unlink(missing_ok=True)
    return {
        "label": label,
        "events": events,
        "bases": [r[0] for r in runs],
        "prods": [r[1] for r in runs],
        "agreement": agreement,
    }


def _best(procs: list, what: str) -> float:
    return min(getattr(p, what) for p in procs)


def report(results: list[dict[str, object]]) -> None:
    print("\n### Agreement (product vs baseline; mismatching rows, 0 = identical)")
    for r in results:
        print(f"\n{r['label']}:")
        print(table(r["agreement"], ["output", "rows", "mismatches"]))
    print("\n### Time and peak memory (fresh processes; best of the repeats)")
    rows = []
    for r in results:
        bases, prods = r["bases"], r["prods"]
        bw, pw = _best(bases, "seconds"), _best(prods, "seconds")
        bc, pc = _best(bases, "cpu"), _best(prods, "cpu")
        in_run = min(p.extra["in_run"] or float("nan") for p in prods)
        base_in = min(sum(b.extra.values()) for b in bases)
        rows.append(
            [
                r["label"],
                r["events"],
                bw,
                pw,
                f"{pw / bw:.2f}x",
                bc,
                pc,
                f"{pc / bc:.2f}x",
                base_in,
                in_run,
                _best(bases, "peak_mib"),
                _best(prods, "peak_mib"),
            ]
        )
    print(
        table(
            rows,
            [
                "size",
                "events",
                "base wall s",
                "prod wall s",
                "wall ratio",
                "base CPU s",
                "prod CPU s",
                "CPU ratio",
                "base work s",
                "prod run s",
                "base MiB",
                "prod MiB",
            ],
        )
    )
    print(
        "(wall/CPU = the whole process incl. Python start and imports; CPU = user+system of all its threads, "
        "steadier than wall on a shared machine; work/run s = wall of the computation alone: the baseline's "
        "phases, the CLI's own 'run ... in Xs')"
    )
    if len(results) > 1:
        print("\n### Growth (wall / CPU)")
        grow = []
        for a, b in itertools.pairwise(results):
            scale = b["events"] / a["events"]

            def g(side: str, what: str, a=a, b=b) -> str:
                return f"{_best(b[side], what) / _best(a[side], what):.1f}x"

            grow.append(
                [
                    f"{a['label']} -> {b['label']}",
                    f"{scale:.1f}x",
                    g("bases", "seconds"),
                    g("bases", "cpu"),
                    g("prods", "seconds"),
                    g("prods", "cpu"),
                ]
            )
        print(table(grow, ["sizes", "events", "baseline wall", "baseline CPU", "product wall", "product CPU"]))
    print("\n### Baseline phases (s)")
    phases = list(results[0]["bases"][0].extra)
    print(
        table(
            [[r["label"], *(min(b.extra[p] for b in r["bases"]) for p in phases)] for r in results], ["size", *phases]
        )
    )
    print("\n### Product steps (s, from the CLI's step lines; best of the repeats)")
    best_steps = []
    for r in results:
        steps: dict[str, float] = {}
        for p in r["prods"]:
            for path, _, sec in p.extra["steps"]:
                steps[path] = min(steps.get(path, sec), sec)
        best_steps.append(steps)
    rows = [[path, *(s.get(path, 0.0) for s in best_steps)] for path in best_steps[0]]
    rows.append(["(sum of steps)", *(sum(s.values()) for s in best_steps)])
    rows.append(["(run total, CLI)", *(min(p.extra["in_run"] or 0.0 for p in r["prods"]) for r in results)])
    rows.append(["(process)", *(_best(r["prods"], "seconds") for r in results)])
    print(table(rows, ["step", *(r["label"] for r in results)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100k,1M",
        help="comma-separated: example, 100k, 1M, 10M, ... "
        "(default 100k,1M; 10M takes ~1 min to generate once, then a few minutes per run)",
    )
    parser.add_argument("--project", default="example", choices=sorted(PROJECTS), help="the project to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the best of each side is reported")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)  # internal: run the baseline on this database
    parser.add_argument("--end-time", default=END_TIME, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline:
        print(json.dumps(baseline(args.baseline, args.end_time, args.project)))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="profiles_e2e_"))
    start = time.perf_counter()
    try:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        results = [bench_size(size, folder, args.repeat, args.project) for size in sizes]
        report(results)
        bad = [(r["label"], a[0]) for r in results for a in r["agreement"] if a[2] != 0]
        print(
            f"\nbenchmark took {time.perf_counter() - start:.0f}s; "
            + ("outputs agree at every size" if not bad else f"DISAGREEMENT: {bad}")
        )
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"scratch kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
