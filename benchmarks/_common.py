"""Shared helpers of the benchmarks: a fast seeded event generator, timed child processes, tables.

The generator produces the example project's four raw tables (identifies, tracks, pages, orders,
same columns and types as `example_project/loading.py` loads) at any size, with the same kinds of
people as `example_project/generate_data.py` in the same proportions: registered users on 1-4
devices (some with a second user_id or email), anonymous visitors, guest buyers, backend-only
users, multi-hop id chains, shared family devices, junk and near-junk ids, mixed-case and padded
emails. It is vectorised (numpy draws the structure as integer codes, DuckDB formats the strings)
so 10M events take about a minute. Timestamps are microsecond-distinct across all four tables, so
"first" and "latest" are never tied and any two correct implementations agree exactly.
"""

from __future__ import annotations

import compileall
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_project"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
END_TIME = "2025-11-01T00:00:00Z"
CACHE = Path(os.environ.get("PROFILES_BENCH_CACHE", Path(tempfile.gettempdir()) / "profiles_dagster_bench"))
GENERATOR_VERSION = 1
SEED = 20250101

# --------------------------------------------------------------------------- the generator

_SPAN_DAYS = 303  # 2025-01-01 .. 2025-10-31, as the example's generator
_START_US = 1735689600_000000  # 2025-01-01 00:00:00 UTC in microseconds
_ROWS_PER_PERSON = 13.8  # average over the example's mix of people (calibrated)

_FIRST = [
    "ana",
    "ben",
    "carla",
    "dev",
    "emma",
    "farid",
    "gina",
    "hugo",
    "iris",
    "jon",
    "kai",
    "lena",
    "milo",
    "nora",
    "omar",
    "petra",
    "quinn",
    "rosa",
    "sam",
    "tara",
]
_LAST = [
    "smith",
    "jones",
    "garcia",
    "brown",
    "miller",
    "davis",
    "lopez",
    "wilson",
    "moore",
    "taylor",
    "lee",
    "martin",
    "clark",
    "lewis",
    "walker",
    "hall",
]
_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "acme.io"]
_EVENTS = ["Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Search Performed", "Signed In"]
_PATHS = ["/", "/pricing", "/cart", "/checkout", "/account", "/blog", "/search"]
_PRODUCTS = ["mug", "tee", "cap", "socks", "bag", "poster", "hoodie", "pen"]

# negative codes: NULL and the junk values the project's id filters drop
NULL = -1
_JUNK_ANON = {-2: "undefined", -3: "null", -4: "unknown", -5: "test-123"}
_ZERO_USER = -2  # user_id '0'
_JUNK_EMAIL = {
    -2: "noreply@example.com",
    -3: "not-an-email",
    -4: "jane@localhost",
    -5: "N/A",
    -6: "NoReply@Example.com ",
}

_COLUMNS = {
    "identifies": ("person", "anon", "uid", "email", "ev"),
    "tracks": ("person", "anon", "uid", "event"),
    "pages": ("person", "anon", "path"),
    "orders": ("person", "uid", "email", "ev", "cents", "status"),
}


class _Gen:
    """Accumulates integer-coded rows; `frames()` turns them into column arrays with timestamps."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.parts: dict[str, list[dict[str, object]]] = {t: [] for t in _COLUMNS}
        self.lo: list = []
        self.hi: list = []
        self.n_people = 0
        self.counters = {"dev": 0, "uid": 0, "email": 0}

    # ---- primitives
    def people(self, n: int, whole_span: bool = False):
        rng = self.rng
        span = _SPAN_DAYS * 86400
        if whole_span:
            lo, hi = np.zeros(n, dtype=np.int64), np.full(n, span - 1, dtype=np.int64)
        else:
            length = rng.integers(3 * 86400, 120 * 86400, size=n, endpoint=True)
            lo = (rng.random(n) * (span - length - 1)).astype(np.int64)
            hi = lo + length
        self.lo.append(lo)
        self.hi.append(hi)
        first = self.n_people
        self.n_people += n
        return np.arange(first, first + n, dtype=np.int64)

    def alloc(self, kind: str, n: int):
        first = self.counters[kind]
        self.counters[kind] += n
        return np.arange(first, first + n, dtype=np.int64)

    def alloc_where(self, kind: str, mask):
        out = np.full(len(mask), NULL, dtype=np.int64)
        out[mask] = self.alloc(kind, int(mask.sum()))
        return out

    def counts(self, lo: int, hi: int, n: int):
        """n draws of randint(lo, hi) inclusive, as Python's random.randint."""
        return self.rng.integers(lo, hi, size=n, endpoint=True)

    def chance(self, p: float, n: int):
        return self.rng.random(n) < p

    def variant(self, n: int):
        """How a client sends an email: as is, Capitalised, UPPER, padded, padded Capitalised."""
        return self.rng.choice(5, size=n, p=[0.55, 0.17, 0.10, 0.12, 0.06])

    def add(self, table: str, person, **cols) -> None:
        n = len(person)
        if n == 0:
            return
        row: dict[str, object] = {"person": person}
        for name in _COLUMNS[table][1:]:
            value = cols.get(name, NULL)
            row[name] = np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)).copy()
        self.parts[table].append(row)

    def repeat(self, counts, *arrays):
        return [np.repeat(a, counts) for a in arrays]

    def pick(self, a, b, use_b):
        """Per row: b where use_b (and b exists), else a."""
        return np.where(use_b & (b != NULL), b, a)

    # ---- event writers (vectorised over rows)
    def pages(self, person, anon, n):
        person, anon = self.repeat(n, person, anon)
        self.add("pages", person, anon=anon, path=self.rng.integers(0, len(_PATHS) + len(_PRODUCTS), len(person)))

    def tracks(self, person, anon, uid, n):
        person, anon, uid = self.repeat(n, person, anon, uid)
        self.add("tracks", person, anon=anon, uid=uid, event=self.rng.integers(0, len(_EVENTS), len(person)))

    def identify(self, person, anon, uid, email):
        self.add("identifies", person, anon=anon, uid=uid, email=email, ev=self.variant(len(person)))

    def amounts(self, high):
        mu = np.where(high, 4.7, 3.4)
        sigma = np.where(high, 0.45, 0.6)
        return np.maximum(100, np.round(self.rng.lognormal(mu, sigma) * 100)).astype(np.int64)

    def orders_for(self, person, uid0, uid1, email0, email1, kind):
        """kind per person: 0 none, 1 normal, 2 high, 3 cancelled only."""
        rng = self.rng
        m = len(person)
        n = np.select(
            [kind == 1, kind == 2, kind == 3],
            [self.counts(1, 4, m), self.counts(3, 7, m), self.counts(1, 2, m)],
            0,
        )
        person, uid0, uid1, email0, email1, kind = self.repeat(n, person, uid0, uid1, email0, email1, kind)
        k = len(person)
        x = rng.random(k)
        status = np.where(x < 0.86, 0, np.where(x < 0.95, 1, 2))
        status = np.where(kind == 3, rng.choice([1, 1, 2], size=k), status)
        uid = self.pick(uid0, uid1, self.chance(0.5, k))
        email = np.where(self.chance(0.85, k), self.pick(email0, email1, self.chance(0.5, k)), NULL)
        guest = self.chance(0.08, k)
        uid = np.where(guest, NULL, uid)
        email = np.where(guest, email0, email)
        email = np.where(~guest & self.chance(0.03, k), -2, email)  # shared junk email
        cents = self.amounts(kind == 2)
        self.add("orders", person, uid=uid, email=email, ev=self.variant(k), cents=cents, status=status)

    # ---- people
    def registered(self, r: int):
        rng = self.rng
        person = self.people(r)
        ndev = rng.choice([1, 2, 3, 4], size=r, p=[0.5, 0.3, 0.15, 0.05])
        starts = np.concatenate([[0], np.cumsum(ndev)[:-1]])
        dev = self.alloc("dev", int(ndev.sum()))
        dev0 = dev[starts]
        uid0 = self.alloc("uid", r)
        uid1 = self.alloc_where("uid", self.chance(0.06, r))
        email0 = self.alloc("email", r)
        email1 = self.alloc_where("email", self.chance(0.1, r))
        # per device
        owner = np.repeat(np.arange(r), ndev)
        rank = np.arange(len(dev)) - np.repeat(starts, ndev)
        d_person, d_uid0, d_uid1, d_email0 = person[owner], uid0[owner], uid1[owner], email0[owner]
        nd = len(dev)
        self.pages(d_person, dev, self.counts(1, 5, nd))
        self.tracks(d_person, dev, np.full(nd, NULL), self.counts(0, 3, nd))
        linked = (rank == 0) | self.chance(0.92, nd)
        uid = self.pick(d_uid0, d_uid1, self.chance(0.5, nd))[linked]
        email = np.where(self.chance(0.75, nd), d_email0, NULL)[linked]
        self.identify(d_person[linked], dev[linked], uid, email)
        self.tracks(d_person[linked], dev[linked], uid, self.counts(1, 6, int(linked.sum())))
        # per person
        two = uid1 != NULL
        self.identify(person[two], dev0[two], uid1[two], email0[two])
        two = email1 != NULL
        self.identify(person[two], dev0[two], uid0[two], email1[two])
        self.tracks(person, np.full(r, NULL), uid0, self.counts(0, 2, r))
        some = self.chance(0.05, r)  # newsletter sign-up: email, no user_id
        any_dev = dev[starts + (rng.random(r) * ndev).astype(np.int64)]
        self.identify(person[some], any_dev[some], np.full(int(some.sum()), NULL), email0[some])
        # junk ids riding along with valid ones
        junk_anon = rng.choice([*_JUNK_ANON, NULL], size=r)
        some = self.chance(0.05, r)
        self.identify(person[some], junk_anon[some], uid0[some], email0[some])
        some = self.chance(0.05, r)
        self.identify(person[some], dev0[some], np.full(int(some.sum()), _ZERO_USER), email0[some])
        some = self.chance(0.04, r)
        self.identify(person[some], dev0[some], uid0[some], rng.choice([-2, -3, -4, -5], size=int(some.sum())))
        some = self.chance(0.06, r)
        self.tracks(person[some], junk_anon[some], uid0[some], self.counts(1, 2, int(some.sum())))
        some = self.chance(0.03, r)
        self.tracks(person[some], dev0[some], np.full(int(some.sum()), _ZERO_USER), 1)
        kind = rng.choice(4, size=r, p=[0.40, 0.46, 0.10, 0.04])
        self.orders_for(person, uid0, uid1, email0, email1, kind)
        return person, dev0, uid0, email0

    def visitors(self, v: int) -> None:
        person = self.people(v)
        dev = self.alloc("dev", v)
        self.pages(person, dev, self.counts(1, 8, v))
        some = self.chance(0.3, v)
        self.tracks(person[some], dev[some], np.full(int(some.sum()), NULL), self.counts(1, 4, int(some.sum())))

    def guest_buyers(self, g: int) -> None:
        rng = self.rng
        person = self.people(g)
        email = self.alloc("email", g)
        has_dev = self.chance(0.5, g)
        dev = self.alloc_where("dev", has_dev)
        self.pages(person[has_dev], dev[has_dev], self.counts(1, 4, int(has_dev.sum())))
        self.identify(person[has_dev], dev[has_dev], np.full(int(has_dev.sum()), NULL), email[has_dev])
        high = self.chance(0.15, g)
        n = np.where(high, self.counts(1, 4, g), self.counts(1, 3, g))
        person, email, high = self.repeat(n, person, email, high)
        k = len(person)
        status = np.where(rng.random(k) < 0.88, 0, 1)
        self.add("orders", person, uid=NULL, email=email, ev=self.variant(k), cents=self.amounts(high), status=status)

    def backend_only(self, b: int) -> None:
        person = self.people(b)
        uid, email = self.alloc("uid", b), self.alloc("email", b)
        self.identify(person, np.full(b, NULL), uid, email)
        self.tracks(person, np.full(b, NULL), uid, self.counts(1, 4, b))
        kind = np.where(self.chance(0.5, b), 1, 0)
        self.orders_for(person, uid, np.full(b, NULL), email, np.full(b, NULL), kind)

    def chains(self, c: int) -> None:
        """anon A - user 1 - email E - user 2 - anon B [- email F - anon C]."""
        person = self.people(c)
        a, b = self.alloc("dev", c), self.alloc("dev", c)
        u1, u2 = self.alloc("uid", c), self.alloc("uid", c)
        e = self.alloc("email", c)
        null = np.full(c, NULL)
        self.pages(person, a, self.counts(1, 4, c))
        self.identify(person, a, u1, null)
        self.tracks(person, a, u1, self.counts(1, 3, c))
        normal = np.zeros(c, dtype=bool)
        self.add("orders", person, uid=u1, email=e, ev=self.variant(c), cents=self.amounts(normal), status=0)
        status = self.rng.choice([0, 1], size=c)
        self.add("orders", person, uid=u2, email=e, ev=self.variant(c), cents=self.amounts(normal), status=status)
        self.identify(person, b, u2, null)
        self.tracks(person, b, u2, self.counts(1, 3, c))
        self.pages(person, b, self.counts(1, 4, c))
        more = self.chance(0.4, c)
        m = int(more.sum())
        f, d = self.alloc("email", m), self.alloc("dev", m)
        p = person[more]
        self.add("orders", p, uid=u2[more], email=f, ev=self.variant(m), cents=self.amounts(normal[more]), status=0)
        self.identify(p, d, np.full(m, NULL), f)
        self.pages(p, d, self.counts(1, 3, m))

    def shared_devices(self, person, uid0, email0, groups: int) -> None:
        """A family computer: one anonymous_id signed into by 2-3 registered people (merges them)."""
        rng = self.rng
        sizes = rng.choice([2, 2, 3], size=groups)
        members = rng.permutation(len(person))[: int(sizes.sum())]
        shared = np.repeat(self.alloc("dev", groups), sizes)
        p, u, e = person[members], uid0[members], email0[members]
        k = len(p)
        self.identify(p, shared, u, np.where(self.chance(0.5, k), e, NULL))
        self.pages(p, shared, self.counts(1, 3, k))
        self.tracks(p, shared, u, self.counts(0, 2, k))

    def junk_rows(self, blocks: int) -> None:
        """Rows whose every id is junk: they belong to no one."""
        rng = self.rng
        person = self.people(blocks, whole_span=True)
        for anon in (*_JUNK_ANON, NULL):
            a = np.full(blocks, anon)
            self.identify(person, a, rng.choice([_ZERO_USER, NULL], blocks), rng.choice([-2, -3, -4, -5, NULL], blocks))
            self.tracks(person, a, rng.choice([_ZERO_USER, NULL], blocks), self.counts(1, 3, blocks))
            self.pages(person, a, self.counts(2, 6, blocks))
        for email in (-2, -3, -4, -5, -6, NULL):
            self.add(
                "orders",
                person,
                uid=rng.choice([_ZERO_USER, NULL], blocks),
                email=email,
                ev=0,
                cents=self.amounts(np.zeros(blocks, dtype=bool)),
                status=0,
            )

    def build(self, events: int) -> None:
        k = events / (_ROWS_PER_PERSON * 916)
        person, _, uid0, email0 = self.registered(max(1, round(560 * k)))
        self.visitors(max(1, round(260 * k)))
        self.guest_buyers(max(1, round(60 * k)))
        self.backend_only(max(1, round(12 * k)))
        self.chains(max(1, round(24 * k)))
        self.shared_devices(person, uid0, email0, max(1, round(12 * k)))
        self.junk_rows(max(1, round(k)))

    def frames(self):
        """{table: DataFrame of codes + `ts_us`}, timestamps distinct across all tables."""
        import pandas as pd

        lo, hi = np.concatenate(self.lo), np.concatenate(self.hi)
        tables = {}
        for name, parts in self.parts.items():
            tables[name] = {c: np.concatenate([p[c] for p in parts]) for c in _COLUMNS[name]}
        # a microsecond in the person's window, then made distinct: sorted t_i -> max_{j<=i}(t_j - j) + i
        sizes = [len(t["person"]) for t in tables.values()]
        person = np.concatenate([t["person"] for t in tables.values()])
        us = (lo[person] * 1_000_000 + self.rng.random(len(person)) * ((hi - lo)[person] * 1_000_000)).astype(np.int64)
        order = np.argsort(us, kind="stable")
        s = us[order]
        idx = np.arange(len(s), dtype=np.int64)
        s = np.maximum.accumulate(s - idx) + idx
        us[order] = s
        out = {}
        for (name, cols), chunk in zip(tables.items(), np.split(us, np.cumsum(sizes)[:-1]), strict=True):
            frame = pd.DataFrame({c: cols[c] for c in _COLUMNS[name][1:]})
            frame["ts_us"] = chunk + _START_US
            out[name] = frame
        return out


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def _anon_sql(code: str) -> str:
    junk = " ".join(f"WHEN {k} THEN '{v}'" for k, v in _JUNK_ANON.items())
    return (
        f"CASE WHEN {code} = {NULL} THEN NULL WHEN {code} < 0 THEN (CASE {code} {junk} END) "
        f"WHEN {code} % 997 = 5 THEN 'undefined-legacy-' || {code} "  # near-junk: kept by the anchored regex
        f"WHEN {code} % 991 = 7 THEN 'nullsafe-' || {code} "
        f"ELSE printf('%08x-%04x-%04x', ({code} * 2654435761 + 12345) % 4294967296, "
        f"({code} * 40503 + 11) % 65536, ({code} * 69069 + 7) % 65536) END"
    )


def _uid_sql(code: str) -> str:
    return (
        f"CASE WHEN {code} = {NULL} THEN NULL WHEN {code} = {_ZERO_USER} THEN '0' "
        f"WHEN {code} % 25 = 3 THEN '00' || {code} ELSE CAST({code} + 10000 AS VARCHAR) END"
    )


def _email_sql(code: str, variant: str) -> str:
    junk = " ".join(f"WHEN {k} THEN '{v}'" for k, v in _JUNK_EMAIL.items())
    first, last, domains = _sql_list(_FIRST), _sql_list(_LAST), _sql_list(_DOMAINS)
    f = f"{first}[1 + {code} % {len(_FIRST)}]"
    lst = f"{last}[1 + ({code} // 7) % {len(_LAST)}]"
    local = (
        f"CASE {code} % 20 WHEN 0 THEN {f} || '_' || {lst} || '+shop' || {code} "
        f"WHEN 1 THEN {f} || {lst}[1] || {code} WHEN 2 THEN {f} || {lst}[1] || {code} "
        f"ELSE {f} || '.' || {lst} || {code} END"
    )
    canonical = f"({local} || '@' || {domains}[1 + ({code} // 3) % {len(_DOMAINS)}])"
    return (
        f"CASE WHEN {code} = {NULL} THEN NULL WHEN {code} < 0 THEN (CASE {code} {junk} END) ELSE "
        f"(CASE {variant} WHEN 0 THEN {canonical} WHEN 1 THEN upper({canonical}[1]) || {canonical}[2:] "
        f"WHEN 2 THEN upper({canonical}) WHEN 3 THEN '  ' || {canonical} || ' ' "
        f"ELSE ' ' || upper({canonical}[1]) || {canonical}[2:] END) END"
    )


def generate_raw(con, events: int, seed: int = SEED) -> dict[str, int]:
    """Create raw.identifies/tracks/pages/orders with about `events` rows in all, on a DuckDB connection."""
    gen = _Gen(seed)
    gen.build(events)
    frames = gen.frames()
    con.execute("SET enable_progress_bar = false").fetchall()
    con.execute("CREATE SCHEMA IF NOT EXISTS raw").fetchall()
    paths = _sql_list([*_PATHS, *(f"/products/{p}" for p in _PRODUCTS)])
    ts = "make_timestamp(ts_us)"
    selects = {
        "identifies": f"SELECT printf('i%011x', row_number() OVER (ORDER BY ts_us)) AS message_id, "
        f"{_anon_sql('anon')} AS anonymous_id, {_uid_sql('uid')} AS user_id, {_email_sql('email', 'ev')} AS email, "
        f"{ts} AS timestamp",
        "tracks": f"SELECT printf('t%011x', row_number() OVER (ORDER BY ts_us)) AS message_id, "
        f"{_anon_sql('anon')} AS anonymous_id, {_uid_sql('uid')} AS user_id, "
        f"{_sql_list(_EVENTS)}[1 + event] AS event, {ts} AS timestamp",
        "pages": f"SELECT printf('p%011x', row_number() OVER (ORDER BY ts_us)) AS message_id, "
        f"{_anon_sql('anon')} AS anonymous_id, {paths}[1 + path] AS path, {ts} AS timestamp",
        "orders": "SELECT 'ORD-' || (100000 + row_number() OVER (ORDER BY ts_us)) AS order_id, "
        f"{_uid_sql('uid')} AS user_id, {_email_sql('email', 'ev')} AS email, "
        "CAST(cents // 100 || '.' || lpad(CAST(cents % 100 AS VARCHAR), 2, '0') AS DECIMAL(12, 2)) AS amount, "
        "['completed', 'cancelled', 'returned'][1 + status] AS status, "
        f"{ts} AS timestamp",
    }
    counts = {}
    for name, frame in frames.items():
        con.register("codes", frame)
        con.execute(f"CREATE OR REPLACE TABLE raw.{name} AS {selects[name]} FROM codes ORDER BY ts_us").fetchall()
        con.unregister("codes")
        counts[name] = con.execute(f"SELECT count(*) FROM raw.{name}").fetchall()[0][0]
    return counts


def raw_database(events: int) -> tuple[Path, dict[str, int], float]:
    """A cached DuckDB file holding the raw tables for `events`; (path, row counts, seconds to generate)."""
    import duckdb

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"raw_{events}_v{GENERATOR_VERSION}_{duckdb.__version__}.duckdb"
    start = time.perf_counter()
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        con = duckdb.connect(str(tmp))
        try:
            generate_raw(con, events)
            con.execute("CHECKPOINT").fetchall()
        finally:
            con.close()
        tmp.rename(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = ("identifies", "tracks", "pages", "orders")
        counts = {n: con.execute(f"SELECT count(*) FROM raw.{n}").fetchall()[0][0] for n in names}
    finally:
        con.close()
    return path, counts, time.perf_counter() - start


def fresh_copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return target


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A finished child process: wall seconds, CPU seconds (user + system, all threads), peak RSS (MiB), output."""

    argv: list[str]
    seconds: float
    cpu: float
    peak_mib: float
    returncode: int
    stdout: str
    stderr: str
    extra: dict[str, object] = field(default_factory=dict)
    started: float = 0.0  # time.perf_counter() when it was started (CLOCK_MONOTONIC: the same clock in every process)

    def mark(self, name: str) -> float | None:
        """Seconds from the start to a line `<name> <time.perf_counter()>` the process printed, if it did:
        e.g. when an import returned, before the interpreter's teardown that the wall time includes."""
        for line in self.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1]) - self.started
        return None


# A fresh child's peak RSS as wait4 reports it is at least its parent's RSS when it was spawned (Linux
# keeps the high-water mark across exec, and Python spawns with vfork): a benchmark that generated
# 1 GB of data would see every child "peak" at 1 GB. So each child is started by this small launcher,
# which forks (its copy of a ~10 MiB interpreter is the floor), execs the command, and reports the
# child's own wall time and rusage on a pipe.
_LAUNCHER = """
import json, os, sys, time
fd = int(sys.argv[1])
argv = sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(fd)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"cannot run {argv[0]}: {exc}", file=sys.stderr)
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with os.fdopen(fd, "w") as out:
    json.dump({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
               "started": start}, out)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_process(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, check=True) -> Proc:
    """Run a fresh process; its own wall time, CPU time and peak memory (see _LAUNCHER: not its parent's).

    CPU seconds are the steadier measure on a shared machine: waiting for a core adds wall time, not CPU."""
    import json

    read, write = os.pipe()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, str(write), *argv],
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            pass_fds=(write,),
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            report = pipe.read()
        returncode = child.wait()
        out.seek(0)
        err.seek(0)
        stats = json.loads(report) if report else {"seconds": 0.0, "cpu": 0.0, "maxrss_kib": 0}
        proc = Proc(
            argv,
            stats["seconds"],
            stats["cpu"],
            stats["maxrss_kib"] / 1024,
            returncode,
            out.read(),
            err.read(),
            started=stats.get("started", 0.0),
        )
    if check and proc.returncode != 0:
        command = " ".join(argv)
        raise RuntimeError(f"{command} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@functools.cache
def compile_bytecode() -> None:
    """Write the bytecode of the package and the example (`__pycache__/`, ignored by git) before any timed
    process starts: an installed package has it from pip, while an editable checkout where
    PYTHONDONTWRITEBYTECODE is set would compile every module again at every start (about 0.1 s here)."""
    for folder in (REPO / "profiles_dagster", EXAMPLE):
        compileall.compile_dir(folder, quiet=1)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a timed child process (and the bytecode it will read, see `compile_bytecode`)."""
    compile_bytecode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PROFILES_"))}
    # the checkout's own code, whichever checkout the environment's editable install points at
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def write_site_config(path: Path, connection: str, database: Path, schema: str = "profiles") -> Path:
    path.write_text(
        f"connections:\n  {connection}:\n    target: bench\n    outputs:\n      bench:\n"
        f"        type: duckdb\n        path: {database}\n        schema: {schema}\n",
        encoding="utf-8",
    )
    return path


_STEP = re.compile(r"^(\S+)\s+(\S+)\s+([\d,]+) rows\s+([\d.]+)s$")
_TOTAL = re.compile(r"^run seq_no \d+: (\d+) step\(s\) in ([\d.]+)s")


def cli_steps(stdout: str) -> tuple[list[tuple[str, int, float]], float | None]:
    """The CLI's step lines (path, rows, seconds) and the run's own total seconds."""
    steps, total = [], None
    for line in stdout.splitlines():
        if m := _STEP.match(line.strip()):
            steps.append((m.group(1), int(m.group(3).replace(",", "")), float(m.group(4))))
        elif m := _TOTAL.match(line.strip()):
            total = float(m.group(2))
    return steps, total


# --------------------------------------------------------------------------- printing


def table(rows: list[list[object]], header: list[str]) -> str:
    """A plain text table (right-aligned numbers)."""
    cells = [[_fmt(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        parts = [c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+x?", text))


def human(events: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if events >= size and events % (size // 10) == 0:
            value = events / size
            return f"{value:g}{unit}"
    return str(events)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"size '{text}': use e.g. 100k, 1M, 10M")
    return int(float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()])


# --------------------------------------------------------------------------- the stitcher by hand

PB_SALT = "fe971b24-9572-4005-b22f-351e9c09274d"
_NO_TIME = np.iinfo(np.int64).max  # a NULL first_seen_at sorts last


@dataclass
class HandInput:
    """One input of the hand-written stitcher: a table, its time column and its id columns by id type."""

    table: str
    ts: str
    ids: list[tuple[str, str]]  # (id type, column holding the cleaned id or NULL)
    keep: list[str] = field(default_factory=list)  # further columns kept on the per-row table r_<n>


def hand_stitch(con, inputs: list[HandInput], target: str, main: str = "user_main_id", rows: bool = False):
    """pb's whole stitcher table by hand, as fast as one machine allows: the floor a stitcher step is measured
    against. DuckDB numbers the distinct ids with their first-seen time, looks each row's ids up once (integer
    node columns per row), and takes each linked id's first link time (valid_at) in one aggregate; scipy finds the
    components from the row pairs; numpy picks each component's earliest ids; DuckDB hashes only those (pb's main
    id: earliest first_seen_at, NULL last, ties by the smaller hash) and writes the five columns in one statement.

    With ``rows``, the per-row tables ``r_<n>`` (ts, kept columns, node0..) and ``node_main(node, main)`` stay
    (TEMP) for a caller that maps rows to profiles. Returns phase seconds."""
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock[0]
        clock[0] = now

    def run(text: str) -> None:
        con.execute(text).fetchall()

    sightings = " UNION ALL ".join(
        f"SELECT '{t}' AS t, {c} AS id, {i.ts} AS ts FROM {i.table} WHERE {c} IS NOT NULL"
        for i in inputs
        for t, c in i.ids
    )
    run(
        "CREATE OR REPLACE TEMP TABLE hs_ids AS SELECT (row_number() OVER () - 1)::INTEGER AS node, t, id, "
        f"first_seen FROM (SELECT t, id, min(ts) AS first_seen FROM ({sightings}) GROUP BY t, id)"
    )
    for n, i in enumerate(inputs):
        joins = " ".join(
            f"LEFT JOIN hs_ids n{k} ON n{k}.t = '{t}' AND n{k}.id = s.{c}" for k, (t, c) in enumerate(i.ids)
        )
        cols = ", ".join(
            [f"s.{i.ts} AS ts", *(f"s.{c}" for c in i.keep), *(f"n{k}.node AS node{k}" for k in range(len(i.ids)))]
        )
        run(f"CREATE OR REPLACE TEMP TABLE r_{n} AS SELECT {cols} FROM {i.table} s {joins}")
    phase("encode (SQL)")

    def linking(n: int, i: HandInput) -> str:
        """Rows of input n with two or more ids (ids of different types are different nodes)."""
        present = " + ".join(f"(node{k} IS NOT NULL)::INT" for k in range(len(i.ids)))
        return f"r_{n} WHERE {present} >= 2"

    linked = " UNION ALL ".join(
        f"SELECT node{k} AS node, ts FROM {linking(n, i)} AND node{k} IS NOT NULL"
        for n, i in enumerate(inputs)
        if len(i.ids) > 1
        for k in range(len(i.ids))
    )
    if linked:
        run(
            f"CREATE OR REPLACE TEMP TABLE hs_linked AS SELECT node, min(ts) AS linked_at FROM ({linked}) GROUP BY node"
        )
    else:
        run("CREATE OR REPLACE TEMP TABLE hs_linked (node INTEGER, linked_at TIMESTAMP)")
    phase("valid_at (SQL)")
    pairs = " UNION ALL ".join(
        f"SELECT node{a} AS u, node{b} AS v FROM r_{n} WHERE node{a} IS NOT NULL AND node{b} IS NOT NULL"
        for n, i in enumerate(inputs)
        for a in range(len(i.ids))
        for b in range(a + 1, len(i.ids))
    )
    nodes = con.execute(
        "SELECT node, coalesce(epoch_us(first_seen), 9223372036854775807) AS fs FROM hs_ids"
    ).fetchnumpy()
    n_nodes = len(nodes["node"])
    first_seen = np.empty(n_nodes, dtype=np.int64)
    first_seen[nodes["node"]] = nodes["fs"]
    del nodes
    if pairs:
        edges = con.execute(pairs).fetchnumpy()
        u, v = edges["u"].astype(np.int32), edges["v"].astype(np.int32)
    else:
        u = v = np.zeros(0, dtype=np.int32)
    phase("fetch (SQL -> numpy)")
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n_nodes, n_nodes)).tocsr()
    n_comps, labels = connected_components(graph, directed=False)
    del graph, u, v
    phase("components (scipy)")
    earliest = np.full(n_comps, _NO_TIME, dtype=np.int64)
    np.minimum.at(earliest, labels, first_seen)
    candidates = np.flatnonzero(first_seen == earliest[labels])
    comps = pd.DataFrame({"node": np.arange(n_nodes, dtype=np.int32), "comp": labels.astype(np.int32)})
    cands = pd.DataFrame({"node": candidates.astype(np.int32), "comp": labels[candidates].astype(np.int32)})
    phase("earliest ids (numpy)")
    for name, frame in (("hs_comps", comps), ("hs_cands", cands)):  # native tables: joins scan them in parallel
        con.register("hs_frame", frame)
        run(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM hs_frame")
        con.unregister("hs_frame")
    del comps, cands
    rid = f"'rid' || left(sha1(left(sha1('{PB_SALT}' || i.id), 32) || i.t), 32)"
    run(
        f"CREATE OR REPLACE TEMP TABLE hs_mains AS SELECT c.comp, min({rid}) AS main "
        "FROM hs_cands c JOIN hs_ids i USING (node) GROUP BY c.comp"
    )
    phase("main ids (SQL)")
    if rows:
        run(
            "CREATE OR REPLACE TEMP TABLE node_main AS "
            "SELECT c.node, m.main FROM hs_comps c JOIN hs_mains m USING (comp)"
        )
        source = "hs_ids i JOIN node_main m USING (node)"
    else:
        source = "hs_ids i JOIN hs_comps c USING (node) JOIN hs_mains m USING (comp)"
    run(
        f'CREATE TABLE {target} AS SELECT m.main AS "{main}", i.id AS other_id, i.t AS other_id_type, '
        "CASE WHEN k.node IS NULL THEN i.first_seen ELSE k.linked_at END AS valid_at, i.first_seen AS first_seen_at "
        f"FROM {source} LEFT JOIN hs_linked k USING (node)"
    )
    for name in ("hs_mains", "hs_linked", "hs_ids", "hs_comps", "hs_cands"):
        run(f"DROP TABLE IF EXISTS {name}")
    if not rows:
        for n in range(len(inputs)):
            run(f"DROP TABLE IF EXISTS r_{n}")
    phase("write (SQL)")
    return phases
