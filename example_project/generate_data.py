#!/usr/bin/env python3
"""Generate the example project's raw CSVs: identifies, tracks, pages and orders.

Why: the example project and the end-to-end tests need small, committed, reproducible
inputs that exercise every identity-stitching edge case the project's id filters and vars
care about (multi-device users, multi-hop id chains, shared devices, junk ids, mixed-case
emails, users without orders, cancelled-only buyers, high spenders around the cohort's
300.00 threshold). Stdlib only and a fixed seed, so ``python example_project/generate_data.py``
rewrites byte-identical files anywhere.

Conventions of the output:
* timestamps are naive UTC ``YYYY-MM-DD HH:MM:SS`` in [2025-01-01, 2025-10-31) and every
  timestamp is distinct across all four files, so "first"/"latest" are never tied;
* an empty cell means NULL;
* amounts have exactly two decimals.
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20250101
START = datetime(2025, 1, 1)
END = datetime(2025, 10, 31)  # exclusive
SPAN_SECONDS = int((END - START).total_seconds())
DEFAULT_OUT = Path(__file__).resolve().parent / "data"

COLUMNS: dict[str, tuple[str, ...]] = {
    "identifies": ("message_id", "anonymous_id", "user_id", "email", "timestamp"),
    "tracks": ("message_id", "anonymous_id", "user_id", "event", "timestamp"),
    "pages": ("message_id", "anonymous_id", "path", "timestamp"),
    "orders": ("order_id", "user_id", "email", "amount", "status", "timestamp"),
}

# Ids the project's id_type filters must drop ('' is written as an empty cell = NULL).
JUNK_ANON = ("undefined", "null", "unknown", "test-123", "")
JUNK_USER = ("0",)
JUNK_EMAIL = ("noreply@example.com", "not-an-email", "jane@localhost", "N/A")

FIRST = (
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
    "umar",
    "vera",
    "wes",
    "xena",
    "yara",
    "zane",
    "alex",
    "bea",
    "chris",
    "dana",
    "eli",
    "fay",
)
LAST = (
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
    "young",
    "king",
    "wright",
    "scott",
    "green",
    "baker",
    "adams",
    "nelson",
    "hill",
)
DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "proton.me",
    "acme.io",
)
EVENTS = (
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Search Performed",
    "Signed In",
)
PATHS = ("/", "/pricing", "/cart", "/checkout", "/account", "/blog", "/search")
PRODUCTS = ("mug", "tee", "cap", "socks", "bag", "poster", "hoodie", "pen")


@dataclass
class Person:
    """One true human; the stitcher should (mostly) rediscover these."""

    lo: int
    hi: int
    devices: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


class Generator:
    """Accumulates rows for the four files from a seeded RNG."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.rows: dict[str, list[dict[str, object]]] = {name: [] for name in COLUMNS}
        self.used_seconds: set[int] = set()
        self.used_ids: set[str] = set()
        self.people: list[Person] = []

    # ----------------------------------------------------------------- primitives
    def second(self, lo: int, hi: int) -> int:
        """A second offset in [lo, hi] not used by any other row of any file."""
        while True:
            s = self.rng.randint(lo, hi)
            if s not in self.used_seconds:
                self.used_seconds.add(s)
                return s

    def window(self) -> tuple[int, int]:
        """A person's active period: up to ~4 months somewhere in the span."""
        length = self.rng.randint(3 * 86400, 120 * 86400)
        lo = self.rng.randint(0, SPAN_SECONDS - length - 1)
        return lo, lo + length

    def unique(self, make: object) -> str:
        """Draw ids from ``make`` until one is new (ids never collide by accident)."""
        while True:
            value = make()  # type: ignore[operator]
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def anon(self) -> str:
        r = self.rng
        return self.unique(lambda: f"{r.getrandbits(32):08x}-{r.getrandbits(16):04x}-{r.getrandbits(16):04x}")

    def user_id(self) -> str:
        r = self.rng
        if r.random() < 0.04:  # leading zeros: must survive loading as VARCHAR
            return self.unique(lambda: f"{r.randint(1, 9999):06d}")
        return self.unique(lambda: str(r.randint(10000, 999999)))

    def email(self) -> str:
        r = self.rng

        def make() -> str:
            first, last = r.choice(FIRST), r.choice(LAST)
            style = r.random()
            if style < 0.5:
                local = f"{first}.{last}{r.randint(1, 99)}"
            elif style < 0.85:
                local = f"{first}{last[0]}{r.randint(100, 9999)}"
            else:
                local = f"{first}_{last}+shop{r.randint(1, 9)}"
            return f"{local}@{r.choice(DOMAINS)}"

        return self.unique(make)

    def email_variant(self, email: str) -> str:
        """How a client might send a canonical email: mixed case and/or padded."""
        x = self.rng.random()
        if x < 0.55:
            return email
        if x < 0.72:
            return email.title()
        if x < 0.82:
            return email.upper()
        if x < 0.94:
            return f"  {email} "
        return f" {email.title()}"

    # ----------------------------------------------------------------- row writers
    def identify(self, p: Person, anon: str | None, uid: str | None, email: str | None) -> None:
        self.rows["identifies"].append(
            {
                "anonymous_id": anon,
                "user_id": uid,
                "email": email,
                "ts": self.second(p.lo, p.hi),
            }
        )

    def track(self, p: Person, anon: str | None, uid: str | None, n: int = 1) -> None:
        for _ in range(n):
            event = self.rng.choice(EVENTS)
            self.rows["tracks"].append(
                {
                    "anonymous_id": anon,
                    "user_id": uid,
                    "event": event,
                    "ts": self.second(p.lo, p.hi),
                }
            )

    def page(self, p: Person, anon: str | None, n: int = 1) -> None:
        for _ in range(n):
            path = self.rng.choice(PATHS)
            if self.rng.random() < 0.4:
                path = f"/products/{self.rng.choice(PRODUCTS)}"
            self.rows["pages"].append({"anonymous_id": anon, "path": path, "ts": self.second(p.lo, p.hi)})

    def order(self, p: Person, uid: str | None, email: str | None, cents: int, status: str) -> None:
        self.rows["orders"].append(
            {
                "user_id": uid,
                "email": email,
                "cents": cents,
                "status": status,
                "ts": self.second(p.lo, p.hi),
            }
        )

    # ----------------------------------------------------------------- people
    def new_person(self) -> Person:
        lo, hi = self.window()
        p = Person(lo, hi)
        self.people.append(p)
        return p

    def amount(self, high: bool) -> int:
        """Order amount in cents; high spenders buy bigger baskets."""
        mu, sigma = (4.7, 0.45) if high else (3.4, 0.6)
        return max(100, round(self.rng.lognormvariate(mu, sigma) * 100))

    def orders_for(self, p: Person, kind: str) -> None:
        """Orders of a registered person; kind in none/normal/high/cancelled_only."""
        r = self.rng
        if kind == "none":
            return
        n = {
            "normal": r.randint(1, 4),
            "high": r.randint(3, 7),
            "cancelled_only": r.randint(1, 2),
        }[kind]
        for _ in range(n):
            if kind == "cancelled_only":
                status = r.choice(("cancelled", "cancelled", "returned"))
            else:
                x = r.random()
                status = "completed" if x < 0.86 else "cancelled" if x < 0.95 else "returned"
            uid: str | None = r.choice(p.user_ids)
            email: str | None = self.email_variant(r.choice(p.emails)) if r.random() < 0.85 else None
            if r.random() < 0.08:  # guest checkout by a known customer
                uid, email = None, self.email_variant(p.emails[0])
            elif r.random() < 0.03:
                email = "noreply@example.com"  # shared junk email must not merge buyers
            self.order(p, uid, email, self.amount(kind == "high"), status)

    def registered(self, buyer: str | None = None) -> Person:
        """A signed-up user: 1-4 devices, usually 1 user_id and 1 email."""
        r = self.rng
        p = self.new_person()
        p.devices = [self.anon() for _ in range(r.choices((1, 2, 3, 4), (50, 30, 15, 5))[0])]
        p.user_ids = [self.user_id()] + ([self.user_id()] if r.random() < 0.06 else [])
        p.emails = [self.email()] + ([self.email()] if r.random() < 0.1 else [])
        for i, device in enumerate(p.devices):
            self.page(p, device, r.randint(1, 5))
            self.track(p, device, None, r.randint(0, 3))
            if i == 0 or r.random() < 0.92:  # some extra devices never get linked
                uid = r.choice(p.user_ids)
                email = self.email_variant(p.emails[0]) if r.random() < 0.75 else None
                self.identify(p, device, uid, email)
                self.track(p, device, uid, r.randint(1, 6))
        for uid in p.user_ids[1:]:  # a second account, signed in on the main device
            self.identify(p, p.devices[0], uid, self.email_variant(p.emails[0]))
        for email in p.emails[1:]:  # changed email later on
            self.identify(p, p.devices[0], p.user_ids[0], self.email_variant(email))
        self.track(p, None, p.user_ids[0], r.randint(0, 2))  # server-side events
        if r.random() < 0.05:  # newsletter sign-up: email but no user_id
            self.identify(p, r.choice(p.devices), None, self.email_variant(p.emails[0]))
        # junk ids riding along with valid ones
        if r.random() < 0.05:
            self.identify(p, r.choice(JUNK_ANON), p.user_ids[0], self.email_variant(p.emails[0]))
        if r.random() < 0.05:
            self.identify(p, p.devices[0], "0", self.email_variant(p.emails[0]))
        if r.random() < 0.04:
            self.identify(p, p.devices[0], p.user_ids[0], r.choice(JUNK_EMAIL))
        if r.random() < 0.06:
            self.track(p, r.choice(JUNK_ANON), p.user_ids[0], r.randint(1, 2))
        if r.random() < 0.03:
            self.track(p, p.devices[0], "0")
        if buyer is None:
            buyer = r.choices(("none", "normal", "high", "cancelled_only"), (40, 46, 10, 4))[0]
        self.orders_for(p, buyer)
        return p

    def visitor(self) -> Person:
        """An anonymous visitor: one device, page views, sometimes anonymous tracks."""
        r = self.rng
        p = self.new_person()
        p.devices = [self.anon()]
        self.page(p, p.devices[0], r.randint(1, 8))
        if r.random() < 0.3:
            self.track(p, p.devices[0], None, r.randint(1, 4))
        return p

    def guest_buyer(self) -> Person:
        """Buys by email only, never signs up."""
        r = self.rng
        p = self.new_person()
        p.emails = [self.email()]
        if r.random() < 0.5:
            p.devices = [self.anon()]
            self.page(p, p.devices[0], r.randint(1, 4))
            self.identify(p, p.devices[0], None, self.email_variant(p.emails[0]))
        high = r.random() < 0.15
        for _ in range(r.randint(1, 4 if high else 3)):
            status = "completed" if r.random() < 0.88 else "cancelled"
            self.order(p, None, self.email_variant(p.emails[0]), self.amount(high), status)
        return p

    def backend_only(self) -> Person:
        """Identified server-side only: no device, so distinct_devices is 0."""
        r = self.rng
        p = self.new_person()
        p.user_ids = [self.user_id()]
        p.emails = [self.email()]
        self.identify(p, None, p.user_ids[0], self.email_variant(p.emails[0]))
        self.track(p, None, p.user_ids[0], r.randint(1, 4))
        if r.random() < 0.5:
            self.orders_for(p, "normal")
        return p

    def chain(self) -> Person:
        """A multi-hop chain: anon A - user 1 - email E - user 2 - anon B [- email F - anon C].

        No row carries two non-adjacent links, so the shortest path A..B has 4 hops.
        """
        r = self.rng
        p = self.new_person()
        a, b = self.anon(), self.anon()
        u1, u2 = self.user_id(), self.user_id()
        e = self.email()
        p.devices, p.user_ids, p.emails = [a, b], [u1, u2], [e]
        self.page(p, a, r.randint(1, 4))
        self.identify(p, a, u1, None)
        self.track(p, a, u1, r.randint(1, 3))
        self.order(p, u1, self.email_variant(e), self.amount(False), "completed")
        self.order(
            p,
            u2,
            self.email_variant(e),
            self.amount(False),
            r.choice(("completed", "cancelled")),
        )
        self.identify(p, b, u2, None)
        self.track(p, b, u2, r.randint(1, 3))
        self.page(p, b, r.randint(1, 4))
        if r.random() < 0.4:  # one more hop: u2 - email F - anon C
            f, c = self.email(), self.anon()
            p.emails.append(f)
            p.devices.append(c)
            self.order(p, u2, self.email_variant(f), self.amount(False), "completed")
            self.identify(p, c, None, self.email_variant(f))
            self.page(p, c, r.randint(1, 3))
        return p

    def share_device(self, people: list[Person]) -> None:
        """A family computer: one anonymous_id signed into by 2-3 people (merges them)."""
        r = self.rng
        shared = self.anon()
        for p in people:
            p.devices.append(shared)
            email = self.email_variant(p.emails[0]) if r.random() < 0.5 else None
            self.identify(p, shared, p.user_ids[0], email)
            self.page(p, shared, r.randint(1, 3))
            self.track(p, shared, p.user_ids[0], r.randint(0, 2))

    def threshold_buyers(self) -> None:
        """Completed revenue of exactly 300.00 (in the cohort) and 299.99 (not)."""
        for cents in ((10000, 20000), (14999, 15000)):
            p = self.registered(buyer="none")
            for c in cents:
                self.order(p, p.user_ids[0], self.email_variant(p.emails[0]), c, "completed")
            self.order(p, p.user_ids[0], None, 5000, "cancelled")

    def junk_rows(self) -> None:
        """Rows whose every id is junk: they belong to no one."""
        r = self.rng
        p = Person(0, SPAN_SECONDS - 1)
        for anon in JUNK_ANON:
            self.identify(p, anon, r.choice(("0", None)), r.choice((*JUNK_EMAIL, None)))
            self.track(p, anon, r.choice(("0", None)), r.randint(1, 3))
            self.page(p, anon, r.randint(2, 6))
        for email in (*JUNK_EMAIL, None):
            self.order(p, r.choice(("0", None)), email, self.amount(False), "completed")
        self.order(p, "0", "NoReply@Example.com ", self.amount(True), "completed")

    def near_junk_rows(self, people: list[Person]) -> None:
        """Ids that only anchored filters judge right: a device id that merely contains a junk word
        (kept), and an email-like text with an address inside it (dropped)."""
        for n, p in enumerate(people):
            self.identify(p, f"undefined-legacy-{n}", p.user_ids[0], None)
            self.track(p, f"nullsafe-{n}", p.user_ids[0], 1)
            self.identify(p, p.devices[0], p.user_ids[0], f"reply to {p.emails[0]}")

    # ----------------------------------------------------------------- driver
    def build(self) -> None:
        r = self.rng
        registered = [self.registered() for _ in range(560)]
        for _ in range(260):
            self.visitor()
        for _ in range(60):
            self.guest_buyer()
        for _ in range(12):
            self.backend_only()
        for _ in range(24):
            self.chain()
        self.threshold_buyers()
        pool = registered[:]
        r.shuffle(pool)
        for _ in range(12):
            self.share_device([pool.pop() for _ in range(r.choice((2, 2, 3)))])
        self.junk_rows()
        self.near_junk_rows(registered[:3])

    def write(self, out_dir: Path) -> dict[str, tuple[int, int]]:
        """Write the CSVs sorted by time; returns {name: (rows, bytes)}."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stats: dict[str, tuple[int, int]] = {}
        for name, columns in COLUMNS.items():
            rows = sorted(self.rows[name], key=lambda row: row["ts"])  # type: ignore[arg-type, return-value]
            path = out_dir / f"{name}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(columns)
                seen: set[str] = set()
                for i, row in enumerate(rows):
                    ts = (START + timedelta(seconds=int(row["ts"]))).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[call-overload]
                    if name == "orders":
                        cents = int(row["cents"])  # type: ignore[call-overload]
                        key = f"ORD-{100001 + i}"
                        values = [
                            key,
                            row["user_id"],
                            row["email"],
                            f"{cents // 100}.{cents % 100:02d}",
                            row["status"],
                        ]
                    else:
                        key = f"{name[0]}{self.rng.getrandbits(44):011x}"
                        while key in seen:
                            key = f"{name[0]}{self.rng.getrandbits(44):011x}"
                        seen.add(key)
                        values = [key] + [row[c] for c in columns[1:-1]]
                    writer.writerow(["" if v is None else v for v in values] + [ts])
            stats[name] = (len(rows), path.stat().st_size)
        return stats


def main(argv: list[str] | None = None) -> None:
    """CLI: regenerate the CSVs (default into example_project/data)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    gen = Generator(SEED)
    gen.build()
    stats = gen.write(args.out)
    for name, (rows, size) in stats.items():
        print(f"{name}.csv: {rows} rows, {size} bytes")
    print(f"total: {sum(s for _, s in stats.values())} bytes; {len(gen.people)} true people")


if __name__ == "__main__":
    main()
