"""The same project and data through the reference pb and through profiles-dagster on Postgres, diffed value by value.

Not part of CI: it needs RudderStack's `pb` binary (a reference only, never a dependency of the package) and a
Postgres server (or Debian's postgresql-15 binaries for --start-postgres).

1. loads the project's input data into schema `raw` (the example: its CSVs via COPY, with the column types of
   `example_project/loading.py`; or, with --scale/--events, a larger data set of the same shape from
   benchmarks/_common.py's generator);
2. runs `pb run` on a copy of the project (pb writes output/ and logs/ into the project folder) into schema
   `pb_out`, then `profiles-dagster run` on another copy into `pd_out`, with the same --end_time; each is a fresh
   process and its wall clock is what is timed (pb gets --grep_var_dependencies: without it pb 0.26.4 does not
   see that a var's `where: order_number = 1` needs the input var order_number, and the example fails);
3. diffs the outputs: the id stitcher (ids, main ids, the cluster partition compared independently of main ids,
   first_seen_at), every stable view pb created (read from pb's schema: feature views, by-id views, cohorts,
   sql models) column by column and value by value, cohort membership;
4. prints both run times and their ratio (issue 20: profiles-dagster in at most a quarter of pb's time on
   Postgres at 100k people).

    /tmp/dev/bin/python benchmarks/compare_pb.py --start-postgres                  # the example's CSVs
    /tmp/dev/bin/python benchmarks/compare_pb.py --start-postgres --people 20k     # ~276k events
    /tmp/dev/bin/python benchmarks/compare_pb.py --start-postgres --people 100k    # ~1.38M events
    /tmp/dev/bin/python benchmarks/compare_pb.py --start-postgres --scale 35       # ~445k events
    /tmp/dev/bin/python benchmarks/compare_pb.py --host db --port 5432 --user u --password p --dbname d

The example's events all fall before the default end time; an end time inside the data (--end-time
2025-06-01T00:00:00Z) also checks how each tool cuts its inputs at the end time (pb keeps only rows with
occurred_at_col <= end time, or NULL, everywhere: stitcher edges, vars and the sql models' DeRef'd inputs).

Exit status: 0 when everything compared matches, 1 on mismatches, 2 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import importlib.util
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

from _common import (  # noqa: E402
    _ROWS_PER_PERSON,
    Proc,
    clean_env,
    cli_steps,
    human,
    parse_size,
    raw_database,
    run_process,
    table,
)

END_TIME = "2025-11-01T00:00:00Z"
DEFAULT_PB = os.environ.get("PB_BIN", "/tmp/pbref/bin/pb")
EXAMPLE = REPO / "example_project"
EXAMPLE_EVENTS = 12_690  # rows of the example's four CSVs
TARGET_RATIO = 0.25  # issue 20: profiles-dagster's run in at most a quarter of pb's time (at 100k people)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
PB_INTERNAL = {"ptr_to_latest_seqno_cache"}
EXCLUDED = [
    (
        "user_id_stitcher.valid_at",
        "pb's values depend on its iterative algorithm; pb.md: nothing downstream should rely on equality there",
    ),
    (
        "Material_* tables and views, pb's material_registry/wht_seq_no/ptr_to_latest_seqno_cache",
        "internal: names carry each tool's own hashes and seq_nos; only the stable views are compared",
    ),
]


# --------------------------------------------------------------------------- database


@dataclass
class Database:
    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    def connect(self):
        import psycopg

        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "autocommit": True,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return psycopg.connect(**kwargs)

    @property
    def pb_host(self) -> str:
        """pb 0.26.4 will not connect to Postgres on localhost/127.0.0.1; 127.0.0.2 is the same machine."""
        return "127.0.0.2" if self.host in LOCAL_HOSTS else self.host


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[Database]:
    if not args.start_postgres:
        yield Database(args.host, args.port, args.user, args.password, args.dbname)
        return
    from profiles_dagster_tests.standins.postgres import postgres_server

    started = time.perf_counter()
    with postgres_server(settings={"listen_addresses": "127.0.0.1,127.0.0.2"}) as server:
        name = server.create_database(args.dbname if args.dbname != "postgres" else "compare_pb")
        print(f"started a throwaway Postgres on 127.0.0.1:{server.port} in {time.perf_counter() - started:.1f}s")
        yield Database("127.0.0.1", server.port, server.user, server.password, name)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_type(duckdb_type: str) -> str:
    upper = duckdb_type.strip().upper()
    if upper in {"VARCHAR", "STRING", "TEXT"}:
        return "text"
    if upper.startswith("DECIMAL"):
        return "numeric" + duckdb_type.strip()[len("DECIMAL") :]
    if upper == "DOUBLE":
        return "double precision"
    return duckdb_type.lower()


def project_column_types(project: Path) -> dict[str, dict[str, str]]:
    """{table: {column: Postgres type}} from the project's loading.py (COLUMN_TYPES), as the example defines it."""
    path = project / "loading.py"
    if not path.is_file():
        raise SystemExit(
            f"{project} has no loading.py with COLUMN_TYPES: load its inputs yourself and pass --skip-load"
        )
    spec = importlib.util.spec_from_file_location("_compare_pb_loading", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {t: {c: _pg_type(ty) for c, ty in cols.items()} for t, cols in module.COLUMN_TYPES.items()}


def copy_csv(con, table_name: str, types: dict[str, str], csv_path: Path, schema: str = "raw") -> int:
    """(Re)create schema.table with the given types and COPY the CSV in; empty cells (quoted or not) are NULL."""
    with csv_path.open(encoding="utf-8") as fh:
        header = [h.strip().strip('"') for h in fh.readline().rstrip("\n").split(",")]
    missing = [c for c in header if c not in types]
    if missing:
        raise SystemExit(f"{csv_path}: columns {missing} have no type in loading.py")
    target = f"{_ident(schema)}.{_ident(table_name)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    con.execute(f"DROP TABLE IF EXISTS {target} CASCADE")
    con.execute(f"CREATE TABLE {target} ({', '.join(f'{_ident(c)} {types[c]}' for c in types)})")
    cols = ", ".join(_ident(c) for c in header)
    with (
        con.cursor() as cur,
        cur.copy(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true, FORCE_NULL ({cols}))") as copy,
        csv_path.open("rb") as fh,
    ):
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    con.execute(f"ANALYZE {target}")
    return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]


def load_inputs(db: Database, project: Path, events: int | None, scratch: Path) -> dict[str, int]:
    types = project_column_types(project)
    if events is None:
        data_dir = project / "data"
        files = {name: data_dir / f"{name}.csv" for name in types}
    else:
        files = _generated_csvs(events, scratch / "generated")
    with db.connect() as con:
        return {name: copy_csv(con, name, types[name], path) for name, path in files.items()}


def _generated_csvs(events: int, folder: Path) -> dict[str, Path]:
    """The example's shape at `events` rows (benchmarks/_common.py's generator, cached as DuckDB) as CSV files."""
    import duckdb

    source, _, seconds = raw_database(events)
    print(f"generated data for ~{human(events)} events ({source.name}) in {seconds:.1f}s")
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(source), read_only=True)
    try:
        out = {}
        for name in ("identifies", "tracks", "pages", "orders"):
            out[name] = folder / f"{name}.csv"
            con.execute(
                f"COPY raw.{name} TO '{out[name]}' (FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%f')"
            ).fetchall()
        return out
    finally:
        con.close()


RECORD_SCHEMA = "compare_pb"  # pb's recorded run times (kept across runs: pb takes minutes at 100k people)


def raw_signature(db: Database) -> str:
    """The raw tables' row counts: a recorded pb time is reused only on the same data."""
    with db.connect() as con:
        found = con.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'raw' AND c.relkind = 'r' ORDER BY c.relname"
        ).fetchall()
        counts = [
            f"{name}={con.execute(f'SELECT count(*) FROM raw.{_ident(name)}').fetchone()[0]}" for (name,) in found
        ]
    return ",".join(counts)


def record_pb_time(db: Database, signature: str, proc: Proc) -> None:
    """Keep pb's wall time of a successful run on these raw tables (`--skip-pb` compares against it)."""
    with db.connect() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {RECORD_SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {RECORD_SCHEMA}.pb_runs "
            "(recorded_at timestamptz DEFAULT now(), raw_rows text, seconds double precision, duration text)"
        )
        con.execute(
            f"INSERT INTO {RECORD_SCHEMA}.pb_runs (raw_rows, seconds, duration) VALUES (%s, %s, %s)",
            (signature, proc.seconds, _pb_duration(proc)),
        )


def recorded_pb_times(db: Database, signature: str) -> list[tuple[float, str, dt.datetime]]:
    """pb's recorded runs on raw tables of these row counts: (seconds, pb's own Duration, when), oldest first."""
    with db.connect() as con:
        if con.execute("SELECT to_regclass(%s)", (f"{RECORD_SCHEMA}.pb_runs",)).fetchone()[0] is None:
            return []
        return con.execute(
            f"SELECT seconds, duration, recorded_at FROM {RECORD_SCHEMA}.pb_runs WHERE raw_rows = %s "
            "ORDER BY recorded_at",
            (signature,),
        ).fetchall()


def reset_schemas(db: Database, *schemas: str) -> None:
    with db.connect() as con:
        for schema in schemas:
            con.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")
            con.execute(f"CREATE SCHEMA {_ident(schema)}")  # pb expects its output schema to exist


# --------------------------------------------------------------------------- the two runs


def copy_project(project: Path, target: Path) -> Path:
    shutil.copytree(
        project,
        target,
        ignore=shutil.ignore_patterns("output", "logs", "__pycache__", "*.duckdb", "*.duckdb.wal", ".git"),
    )
    return target


def project_connection(project: Path) -> str:
    """pb_project.yaml's `connection:` (read as text: the file may be templated)."""
    text = (project / "pb_project.yaml").read_text(encoding="utf-8")
    match = re.search(r"^connection:\s*['\"]?([^'\"\s#]+)", text, re.MULTILINE)
    if not match:
        raise SystemExit(f"{project / 'pb_project.yaml'}: no `connection:`")
    return match.group(1)


def write_site_config(path: Path, connection: str, host: str, db: Database, schema: str) -> Path:
    import yaml

    settings: dict[str, Any] = {
        "type": "postgres",
        "host": host,
        "port": db.port,
        "dbname": db.dbname,
        "user": db.user,
        "schema": schema,
    }
    if db.password is not None:
        settings["password"] = db.password
    doc = {"connections": {connection: {"target": "dev", "outputs": {"dev": settings}}}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def profiles_dagster_argv() -> list[str]:
    exe = Path(sys.executable).parent / "profiles-dagster"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "profiles_dagster.cli"]


def run_pb(args: argparse.Namespace, db: Database, scratch: Path) -> Proc:
    scratch.mkdir(parents=True, exist_ok=True)
    project = copy_project(args.project, scratch / "pb_project")
    site = write_site_config(
        scratch / "pb_siteconfig.yaml", project_connection(project), db.pb_host, db, args.pb_schema
    )
    argv = [args.pb, "run", "-p", str(project), "-c", str(site), "--end_time", args.end_time]
    if args.grep_var_dependencies:
        argv.append("--grep_var_dependencies")
    argv += args.pb_arg
    proc = run_process(argv, env={**os.environ, "SF_DISABLE_MINICORE": "true"}, cwd=project, check=False)
    (scratch / "pb_stdout.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    return proc


def run_pd(args: argparse.Namespace, db: Database, scratch: Path) -> Proc:
    scratch.mkdir(parents=True, exist_ok=True)
    project = copy_project(args.project, scratch / "pd_project")
    site = write_site_config(scratch / "pd_siteconfig.yaml", project_connection(project), db.host, db, args.pd_schema)
    argv = [
        *profiles_dagster_argv(),
        "run",
        "-p",
        str(project),
        "--site-config",
        str(site),
        "--end_time",
        args.end_time,
    ]
    proc = run_process(argv, env=clean_env(), cwd=project, check=False)
    (scratch / "pd_stdout.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    return proc


class ServerCpu:
    """CPU seconds a local Postgres server spends (user + system), from /proc: what its postmaster has reaped
    from ended children (backends, parallel workers, autovacuum workers) plus its live children's own.

    The run's own work is the steadier figure on a shared machine (waiting for a core is not counted); the
    server is shared, so backends of other databases seen during the run are named beside it."""

    def __init__(self, db: Database) -> None:
        self.postmaster: int | None = None
        self.dbname = db.dbname
        self.others: set[str] = set()
        if db.host not in LOCAL_HOSTS and not db.host.startswith("127."):
            return
        with contextlib.closing(db.connect()) as con, con.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
            try:  # while the backend lives
                self.postmaster = int(self._fields(backend)[1])
            except (OSError, ValueError, IndexError):
                self.postmaster = None

    @staticmethod
    def _fields(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    def seconds(self) -> float | None:
        """The server's CPU so far; None when it cannot be read (a remote server, another user's /proc)."""
        if self.postmaster is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        try:
            total = sum(int(x) for x in self._fields(self.postmaster)[11:15])  # utime stime cutime cstime
        except OSError:
            return None
        for child in Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split():
            with contextlib.suppress(OSError, ValueError):
                total += sum(int(x) for x in self._fields(int(child))[11:13])
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parts = cmd.split()
                if (
                    len(parts) >= 5
                    and parts[0] == "postgres:"
                    and parts[2] not in ("parallel", "autovacuum", "logical")
                    and parts[3] != self.dbname
                ):
                    self.others.add(parts[3])
        return total / tick

    def watch(self, stop: threading.Event) -> None:
        """Look at the server's backends every half second until stopped (for other databases' work)."""
        while not stop.wait(0.5):
            self.seconds()


def _pb_duration(proc: Proc) -> str:
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip().startswith("Duration:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _failure_tail(proc: Proc, lines: int = 25) -> str:
    text = (proc.stdout + "\n" + proc.stderr).strip().splitlines()
    errors = [i for i, line in enumerate(text) if "ERROR" in line or "error" in line]
    start = max(0, (errors[0] - 2) if errors else len(text) - lines)
    return "\n".join("    " + line for line in text[start : start + lines] if line.strip())


# --------------------------------------------------------------------------- the diff


@dataclass
class Check:
    what: str
    pb: int | str
    pd: int | str
    compared: int
    mismatches: int
    examples: list[str] = field(default_factory=list)

    @property
    def matches(self) -> int:
        return self.compared - self.mismatches


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(a, int | decimal.Decimal) and isinstance(b, int | decimal.Decimal):
        return a == b  # numerically: 300.00 == 300
    if isinstance(a, int | decimal.Decimal) or isinstance(b, int | decimal.Decimal):
        return False  # a number against text, a date, ...
    return a == b if type(a) is type(b) else str(a) == str(b)


def show(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return repr(value) if isinstance(value, str) else str(value)


def list_views(con, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = %s ORDER BY table_name", (schema,)
    ).fetchall()
    return [r[0] for r in rows if not r[0].lower().startswith("material_") and r[0] not in PB_INTERNAL]


def columns_of(con, schema: str, relation: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f"{_ident(schema)}.{_ident(relation)}",),
    ).fetchall()


def fetch(con, schema: str, relation: str) -> tuple[list[str], list[tuple]]:
    cur = con.execute(f"SELECT * FROM {_ident(schema)}.{_ident(relation)}")
    return [d.name for d in cur.description], cur.fetchall()


class Stitching:
    """One side's id -> main id mapping and its clusters."""

    def __init__(self, cols: list[str], rows: list[tuple]) -> None:
        main_col = next(c for c in cols if c.endswith("_main_id"))
        i_main, i_id, i_type = cols.index(main_col), cols.index("other_id"), cols.index("other_id_type")
        i_seen = cols.index("first_seen_at") if "first_seen_at" in cols else None
        self.main: dict[tuple[str, str], str] = {}
        self.first_seen: dict[tuple[str, str], Any] = {}
        self.multi: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.members: dict[str, frozenset[tuple[str, str]]] = {}
        members: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for row in rows:
            key = (row[i_id], row[i_type])
            self.multi[key].add(row[i_main])
            self.main.setdefault(key, row[i_main])
            if i_seen is not None:
                self.first_seen[key] = row[i_seen]
            members[row[i_main]].add(key)
        self.rows = len(rows)
        self.multi = {k: v for k, v in self.multi.items() if len(v) > 1}
        self.members = {m: frozenset(s) for m, s in members.items()}


def _ids(keys: Any, n: int) -> str:
    return ", ".join(f"{t}:{i}" for i, t in sorted(keys, key=lambda k: (k[1], str(k[0])))[:n])


def compare_stitcher(pb: Stitching, pd: Stitching, n: int) -> tuple[list[Check], dict[str, str]]:
    """Checks, and pd main id -> pb main id for every cluster both sides agree on (the rest stay as they are)."""
    checks = []
    only_pb, only_pd = pb.main.keys() - pd.main.keys(), pd.main.keys() - pb.main.keys()
    common = pb.main.keys() & pd.main.keys()
    checks.append(
        Check(
            "stitcher: ids (other_id, other_id_type)",
            len(pb.main),
            len(pd.main),
            len(pb.main.keys() | pd.main.keys()),
            len(only_pb) + len(only_pd),
            [f"only in pb: {_ids([k], 1)}" for k in sorted(only_pb)[:n]]
            + [f"only in pd: {_ids([k], 1)}" for k in sorted(only_pd)[:n]],
        )
    )
    checks.append(
        Check(
            "stitcher: rows per id (duplicates)",
            pb.rows,
            pd.rows,
            len(pb.main) + len(pd.main),
            len(pb.multi) + len(pd.multi),
            [f"pb maps {_ids([k], 1)} to {sorted(v)}" for k, v in list(pb.multi.items())[:n]]
            + [f"pd maps {_ids([k], 1)} to {sorted(v)}" for k, v in list(pd.multi.items())[:n]],
        )
    )
    differing = sorted(k for k in common if pb.main[k] != pd.main[k])
    checks.append(
        Check(
            "stitcher: main id of each id",
            len(pb.members),
            len(pd.members),
            len(common),
            len(differing),
            [f"{_ids([k], 1)}: pb {pb.main[k]} pd {pd.main[k]}" for k in differing[:n]],
        )
    )
    pd_clusters = {s: m for m, s in pd.members.items()}
    pb_clusters = {s: m for m, s in pb.members.items()}
    examples = []
    for main, members in sorted(pb.members.items(), key=lambda kv: -len(kv[1])):
        if members not in pd_clusters and len(examples) < n:
            pd_mains = sorted({pd.main[k] for k in members if k in pd.main})
            sizes = [len(pd.members[m]) for m in pd_mains]
            examples.append(
                f"pb cluster {main} ({len(members)} ids: {_ids(members, 4)}...) is in {len(pd_mains)} pd "
                f"cluster(s) of sizes {sizes}"
            )
    not_in_pd = [s for s in pb.members.values() if s not in pd_clusters]
    not_in_pb = [s for s in pd.members.values() if s not in pb_clusters]
    if not_in_pb:
        examples.append(f"{len(not_in_pb)} pd cluster(s) match no pb cluster")
    checks.append(
        Check(
            "stitcher: clusters (partition, main ids ignored)",
            len(pb.members),
            len(pd.members),
            len(pb.members),
            len(not_in_pd),
            examples,
        )
    )
    if pb.first_seen and pd.first_seen:
        diff = sorted(k for k in common if not same(pb.first_seen.get(k), pd.first_seen.get(k)))
        checks.append(
            Check(
                "stitcher: first_seen_at",
                len(pb.first_seen),
                len(pd.first_seen),
                len(common),
                len(diff),
                [f"{_ids([k], 1)}: pb {show(pb.first_seen[k])} pd {show(pd.first_seen[k])}" for k in diff[:n]],
            )
        )
    translate = {pd_main: pb_clusters[s] for pd_main, s in pd.members.items() if s in pb_clusters}
    return checks, translate


def compare_columns(view: str, pb_cols: list[tuple[str, str]], pd_cols: list[tuple[str, str]], n: int) -> Check:
    examples = []
    pb_names, pd_names = [c for c, _ in pb_cols], [c for c, _ in pd_cols]
    if pb_names != pd_names:
        missing = [c for c in pb_names if c not in pd_names]
        extra = [c for c in pd_names if c not in pb_names]
        if missing:
            examples.append(f"missing in pd: {missing}")
        if extra:
            examples.append(f"extra in pd: {extra}")
        if not missing and not extra:
            examples.append(f"order differs: pb {pb_names} pd {pd_names}")
    pd_types = dict(pd_cols)
    retyped = [f"{c}: pb {t} pd {pd_types[c]}" for c, t in pb_cols if c in pd_types and pd_types[c] != t]
    examples += retyped[:n] + ([f"... {len(retyped) - n} more type differences"] if len(retyped) > n else [])
    mismatches = len(set(pb_names) ^ set(pd_names)) + len(retyped)
    if pb_names != pd_names and not mismatches:
        mismatches = 1  # same names, another order
    return Check(
        f"{view}: columns (names, order, types)", len(pb_cols), len(pd_cols), len(pb_cols), mismatches, examples
    )


def compare_view(
    view: str,
    pb_data: tuple[list[str], list[tuple]],
    pd_data: tuple[list[str], list[tuple]],
    translate: dict[str, str],
    n: int,
) -> list[Check]:
    """Rows keyed by the first column when it is unique on both sides, else as multisets of whole rows."""
    (pb_cols, pb_rows), (pd_cols, pd_rows) = pb_data, pd_data
    common_cols = [c for c in pb_cols if c in pd_cols]
    main_cols = {c for c in common_cols if c.endswith("_main_id")}

    def project(cols: list[str], rows: list[tuple], mapping: dict[str, str]) -> list[tuple]:
        idx = [cols.index(c) for c in common_cols]
        out = []
        for row in rows:
            out.append(
                tuple(
                    mapping.get(row[i], row[i]) if c in main_cols else row[i]
                    for c, i in zip(common_cols, idx, strict=True)
                )
            )
        return out

    pb_proj, pd_proj = project(pb_cols, pb_rows, {}), project(pd_cols, pd_rows, translate)
    key = common_cols[0] if common_cols else None
    if key is None:
        return [Check(f"{view}: rows", len(pb_rows), len(pd_rows), 0, 0, ["no common columns"])]
    if len(common_cols) == 1:
        pb_set, pd_set = Counter(r[0] for r in pb_proj), Counter(r[0] for r in pd_proj)
        only_pb, only_pd = pb_set - pd_set, pd_set - pb_set
        return [
            Check(
                f"{view}: members ({key})",
                len(pb_rows),
                len(pd_rows),
                sum((pb_set | pd_set).values()),
                sum(only_pb.values()) + sum(only_pd.values()),
                [f"only in pb: {show(k)}" for k in sorted(only_pb, key=str)[:n]]
                + [f"only in pd: {show(k)}" for k in sorted(only_pd, key=str)[:n]],
            )
        ]
    pb_keys, pd_keys = Counter(r[0] for r in pb_proj), Counter(r[0] for r in pd_proj)
    unique = all(c == 1 for c in pb_keys.values()) and all(c == 1 for c in pd_keys.values())
    if not unique:
        pb_ms = Counter(tuple(_norm(v) for v in r) for r in pb_proj)
        pd_ms = Counter(tuple(_norm(v) for v in r) for r in pd_proj)
        only_pb, only_pd = pb_ms - pd_ms, pd_ms - pb_ms
        dup = [k for k, c in pb_keys.items() if c > 1][:1] + [k for k, c in pd_keys.items() if c > 1][:1]
        return [
            Check(
                f"{view}: whole rows (multiset; {key} not unique, e.g. {show(dup[0]) if dup else '?'})",
                len(pb_rows),
                len(pd_rows),
                sum((pb_ms | pd_ms).values()),
                sum(only_pb.values()) + sum(only_pd.values()),
                [f"only in pb: {r}" for r in list(only_pb)[:n]] + [f"only in pd: {r}" for r in list(only_pd)[:n]],
            )
        ]
    pb_by, pd_by = {r[0]: r for r in pb_proj}, {r[0]: r for r in pd_proj}
    only_pb, only_pd = sorted(pb_by.keys() - pd_by.keys(), key=str), sorted(pd_by.keys() - pb_by.keys(), key=str)
    both = sorted(pb_by.keys() & pd_by.keys(), key=str)
    checks = [
        Check(
            f"{view}: rows by {key}",
            len(pb_rows),
            len(pd_rows),
            len(pb_by.keys() | pd_by.keys()),
            len(only_pb) + len(only_pd),
            [f"only in pb: {show(k)}" for k in only_pb[:n]] + [f"only in pd: {show(k)}" for k in only_pd[:n]],
        )
    ]
    for i, col in enumerate(common_cols[1:], start=1):
        diff = [k for k in both if not same(pb_by[k][i], pd_by[k][i])]
        checks.append(
            Check(
                f"{view}.{col}",
                len(pb_rows),
                len(pd_rows),
                len(both),
                len(diff),
                [f"{key}={show(k)}: pb {show(pb_by[k][i])} pd {show(pd_by[k][i])}" for k in diff[:n]],
            )
        )
    return checks


def _norm(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return value.normalize() if value == value else value
    if isinstance(value, float):
        return round(value, 9)
    return value


def diff(db: Database, pb_schema: str, pd_schema: str, n: int) -> tuple[list[Check], list[str]]:
    notes: list[str] = []
    checks: list[Check] = []
    with db.connect() as con:
        pb_views, pd_views = list_views(con, pb_schema), list_views(con, pd_schema)
        missing = [v for v in pb_views if v not in pd_views]
        extra = [v for v in pd_views if v not in pb_views]
        checks.append(
            Check(
                "stable views (pb's list)",
                len(pb_views),
                len(pd_views),
                len(pb_views),
                len(missing),
                [f"missing in pd: {v}" for v in missing] + [f"only in pd (not compared): {v}" for v in extra],
            )
        )
        stitchers = [
            v for v in pb_views if v in pd_views and {"other_id", "other_id_type"} <= _names(con, pb_schema, v)
        ]
        translate: dict[str, str] = {}
        for view in stitchers:
            checks.append(compare_columns(view, columns_of(con, pb_schema, view), columns_of(con, pd_schema, view), n))
            pb_side = Stitching(*fetch(con, pb_schema, view))
            pd_side = Stitching(*fetch(con, pd_schema, view))
            stitch_checks, mapping = compare_stitcher(pb_side, pd_side, n)
            checks += stitch_checks
            translate.update(mapping)
            changed = sum(1 for a, b in mapping.items() if a != b)
            if changed:
                notes.append(
                    f"{changed} pd main id(s) differ from pb's for identical clusters: views are compared through "
                    "the cluster (pd main id -> pb main id of the same members)"
                )
        for view in pb_views:
            if view not in pd_views or view in stitchers:
                continue
            pb_cols, pd_cols = columns_of(con, pb_schema, view), columns_of(con, pd_schema, view)
            checks.append(compare_columns(view, pb_cols, pd_cols, n))
            checks += compare_view(view, fetch(con, pb_schema, view), fetch(con, pd_schema, view), translate, n)
    return checks, notes


def _names(con, schema: str, view: str) -> set[str]:
    return {c for c, _ in columns_of(con, schema, view)}


# --------------------------------------------------------------------------- report


def print_report(checks: list[Check], notes: list[str], n: int) -> int:
    rows = [
        [c.what, c.pb, c.pd, c.compared, c.matches, c.mismatches, "ok" if not c.mismatches else "MISMATCH"]
        for c in checks
    ]
    print()
    print(table(rows, ["check", "pb", "pd", "compared", "match", "mismatch", ""]))
    print(
        "pb/pd: rows, ids or clusters on each side (for 'main id of each id': distinct main ids); compared: "
        "keys on either side (presence checks) or on both sides (value checks)"
    )
    bad = [c for c in checks if c.mismatches or (c.examples and c.what.startswith("stable views"))]
    if bad:
        print("\nexamples:")
        for c in bad:
            print(f"  {c.what}: {c.mismatches} mismatch(es)")
            for line in c.examples[: 2 * n + 1]:
                print(f"    {line}")
    print("\nexcluded from the diff (documented pb behaviour or internals):")
    for what, why in EXCLUDED:
        print(f"  {what}: {why}")
    for note in notes:
        print(f"note: {note}")
    total = sum(c.mismatches for c in checks)
    print(
        f"\n{len(checks)} checks, {sum(1 for c in checks if c.mismatches)} with mismatches "
        f"({total:,} mismatching values/rows in all)"
    )
    return total


def print_times(pbs: list[Proc], pds: list[Proc], recorded: list[tuple[float, str, dt.datetime]] | None = None) -> None:
    """Each tool's fastest round (the machine may be shared: the minimum is the least disturbed); without a pb
    round, pb's fastest recorded run on the same raw tables."""
    print("\nrun times (wall clock of each whole CLI process; best of the rounds):")
    rows = []
    pb = min(pbs, key=lambda p: p.seconds) if pbs else None
    pd = min(pds, key=lambda p: p.seconds) if pds else None
    if pb is not None:
        rounds = ", ".join(f"{p.seconds:.2f}" for p in pbs)
        rows.append(["pb run (0.26.4)", pb.seconds, rounds, f"pb's own Duration: {_pb_duration(pb)}"])
    elif recorded:
        seconds, duration, _ = min(recorded)
        pb = Proc(argv=[], seconds=seconds, cpu=0.0, peak_mib=0.0, returncode=0, stdout="", stderr="")
        rounds = ", ".join(f"{s:.2f}" for s, _, _ in recorded)
        when = ", ".join(f"{w:%Y-%m-%d %H:%M}" for _, _, w in recorded)
        rows.append(["pb run (recorded)", seconds, rounds, f"pb's own Duration: {duration}; recorded {when}"])
    if pd is not None:
        steps, total = cli_steps(pd.stdout)
        rounds = ", ".join(f"{p.seconds:.2f}" for p in pds)
        inner = f"{len(steps)} steps in {total:.2f}s after start-up" if total is not None else ""
        rows.append(["profiles-dagster run", pd.seconds, rounds, inner])
    print(table(rows, ["process", "seconds", "rounds", ""]))
    if pd is not None:
        steps, _ = cli_steps(pd.stdout)
        slow = sorted(steps, key=lambda s: -s[2])[:6]
        if slow:
            print("profiles-dagster's slowest steps: " + ", ".join(f"{p} {sec:.2f}s" for p, _, sec in slow))
    print(f"load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    if pb is not None and pd is not None and not pb.returncode and not pd.returncode:
        ratio = pd.seconds / pb.seconds
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"ratio profiles-dagster / pb = {ratio:.3f} (pb takes {pb.seconds / pd.seconds:.2f}x as long); "
            f"issue 20's target (at most {TARGET_RATIO:g} of pb's time, at 100k people): {verdict}"
        )


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=EXAMPLE, help="project folder (default: example_project)")
    conn = parser.add_argument_group("Postgres")
    conn.add_argument("--start-postgres", action="store_true", help="start a throwaway cluster (Debian's binaries)")
    conn.add_argument("--host", default="127.0.0.1", help="pb is given 127.0.0.2 for localhost/127.0.0.1")
    conn.add_argument("--port", type=int, default=5432)
    conn.add_argument("--user", default="postgres")
    conn.add_argument("--password", default=os.environ.get("PGPASSWORD"))
    conn.add_argument("--dbname", default="postgres")
    data = parser.add_argument_group("data")
    data.add_argument("--scale", type=float, help=f"generate N x the example's size (~{EXAMPLE_EVENTS:,} events)")
    data.add_argument("--events", help="generate about this many events, e.g. 445k, 2.2M (instead of --scale)")
    data.add_argument(
        "--people",
        help=f"generate data for about this many people, e.g. 20k, 100k (~{_ROWS_PER_PERSON:g} events each; "
        "instead of --scale/--events)",
    )
    data.add_argument("--skip-load", action="store_true", help="use the raw tables already in the database")
    runs = parser.add_argument_group("runs")
    runs.add_argument("--end-time", "--end_time", dest="end_time", default=END_TIME)
    runs.add_argument("--pb", default=DEFAULT_PB, help=f"pb binary (default {DEFAULT_PB}; $PB_BIN)")
    runs.add_argument("--pb-schema", default="pb_out")
    runs.add_argument("--pd-schema", default="pd_out")
    runs.add_argument(
        "--no-grep-var-dependencies",
        dest="grep_var_dependencies",
        action="store_false",
        help="do not pass pb --grep_var_dependencies (without it pb 0.26.4 misses a var's dependency on an "
        "input var named in its `where:`, and the example fails)",
    )
    runs.add_argument("--pb-arg", action="append", default=[], help="extra argument for pb run (repeat)")
    runs.add_argument("--repeat", type=int, default=1, help="run each tool N times (alternating); best time counts")
    runs.add_argument(
        "--skip-pb",
        action="store_true",
        help="keep pb's outputs from a previous run; its time is the fastest one recorded on the same raw tables "
        f"(schema {RECORD_SCHEMA}), so profiles-dagster can be iterated on without running pb again",
    )
    runs.add_argument("--skip-pd", action="store_true", help="keep profiles-dagster's outputs from a previous run")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per mismatch (default 3)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the scratch folder (projects, logs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.project = args.project.resolve()
    events = None
    if args.people:
        events = round(parse_size(args.people) * _ROWS_PER_PERSON)
    elif args.events:
        events = parse_size(args.events)
    elif args.scale:
        events = round(args.scale * EXAMPLE_EVENTS)
    scratch = Path(tempfile.mkdtemp(prefix="compare-pb-"))
    failed = False
    try:
        with database(args) as db:
            if not args.skip_load:
                start = time.perf_counter()
                counts = load_inputs(db, args.project, events, scratch)
                people = f" (~{round(sum(counts.values()) / _ROWS_PER_PERSON):,} people)" if events else ""
                print(
                    f"loaded {sum(counts.values()):,} rows{people} into schema raw in "
                    f"{time.perf_counter() - start:.1f}s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                )
            print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
            signature = raw_signature(db)
            pbs: list[Proc] = []
            pds: list[Proc] = []
            for n in range(1, args.repeat + 1):
                folder = scratch / f"round_{n}"
                if not args.skip_pb:
                    reset_schemas(db, args.pb_schema)
                    pbs.append(run_pb(args, db, folder))
                    print(f"pb run: exit {pbs[-1].returncode} in {pbs[-1].seconds:.2f}s ({folder / 'pb_stdout.log'})")
                    if not pbs[-1].returncode:
                        record_pb_time(db, signature, pbs[-1])
                    if pbs[-1].returncode:
                        failed = True
                        print(_failure_tail(pbs[-1]))
                if not args.skip_pd:
                    reset_schemas(db, args.pd_schema)
                    server = ServerCpu(db)
                    before = server.seconds()
                    stop = threading.Event()
                    watch = threading.Thread(target=server.watch, args=(stop,))
                    watch.start()
                    pds.append(run_pd(args, db, folder))
                    stop.set()
                    watch.join()
                    after = server.seconds()
                    used = ""
                    if before is not None and after is not None:
                        pds[-1].extra["postgres_cpu"] = after - before
                        others = f"; other databases' backends seen: {', '.join(sorted(server.others))}"
                        used = f", Postgres CPU {after - before:.2f}s{others if server.others else ''}"
                    print(
                        f"profiles-dagster run: exit {pds[-1].returncode} in {pds[-1].seconds:.2f}s "
                        f"(its own CPU {pds[-1].cpu:.2f}s{used}); load {os.getloadavg()[0]:.1f}"
                    )
                    if pds[-1].returncode:
                        failed = True
                        print(_failure_tail(pds[-1]))
                if failed:
                    break
            recorded = recorded_pb_times(db, signature) if args.skip_pb else []
            if failed:
                print_times(pbs, pds, recorded)
                args.keep_temp = True
                return 2
            checks, notes = diff(db, args.pb_schema, args.pd_schema, args.examples)
            if args.grep_var_dependencies and not args.skip_pb:
                notes.append("pb ran with --grep_var_dependencies (see --no-grep-var-dependencies)")
            mismatches = print_report(checks, notes, args.examples)
            print_times(pbs, pds, recorded)
            return 1 if mismatches else 0
    finally:
        if args.keep_temp:
            print(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
