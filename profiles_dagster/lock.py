"""The output schema's run lock: one row in `_profiles_lock`, taken by compare-and-set.

Two runs (or a run and a cleanup) against one output schema never interleave. A run takes the lock
before it allocates its seq_no and gives it back when it publishes or fails. A second one waits up
to `run_lock.wait_seconds` (profiles_dagster.yaml; default 0) and then refuses, naming the holder:
its seq_no, project, when it started, its pid and host.

A lock left behind by a killed run is taken over safely:
- same machine (same kernel boot and pid namespace): the holder's process is gone (or a zombie, or
  its pid now belongs to a younger process) -> stale at once;
- another machine: no heartbeat for `run_lock.stale_after_seconds` (default 3600). On a server
  warehouse a thread of the holder's beats on a connection of its own (`keep_alive`), every tenth of
  that time, so a step that runs for hours is not taken for dead; without one (the beat thread could
  not connect) the holder beats when each step starts and ends.

The compare-and-set is one UPDATE ... WHERE run_id IS NULL (or = the stale holder's id), then a read
of who holds the row: every engine serializes concurrent UPDATEs of one row (or fails one of them, as
DuckDB does with a transaction conflict, which counts as losing). DuckDB's own file lock comes first:
a second process cannot open the file at all; `open_session` turns that into `BusyError`, waiting
for the file within the same bound.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlglot import exp

from profiles_dagster.clock import now_utc
from profiles_dagster.errors import BusyError, ProfilesError, summary
from profiles_dagster.sql import registry
from profiles_dagster.sql.names import table
from profiles_dagster.warehouse.base import Session, WarehouseEngine

log = logging.getLogger("profiles_dagster")

DEFAULT_WAIT_SECONDS = 0.0
DEFAULT_STALE_AFTER_SECONDS = 3600.0


# -- this process, and whether another one is alive -------------------------------------------------------


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), telling a pid's reuse apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None


def node_id() -> str:
    """Where pids mean the same process: this kernel boot and pid namespace (Linux), else the host name."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return f"host:{socket.gethostname()}"
    return f"{boot}/{namespace}"


def process_token(pid: int | None = None) -> str:
    """`node|pid|start`: names this process (or `pid` here) uniquely while the machine is up."""
    pid = pid or os.getpid()
    return f"{node_id()}|{pid}|{_proc_start(pid) or ''}"


def process_alive(token: str) -> bool | None:
    """Whether the process a token names is still running; None when it ran elsewhere (cannot tell)."""
    parts = token.split("|")
    if len(parts) != 3:
        return None
    node, pid_text, start = parts
    if node != node_id() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return None
    if _proc_state(pid) in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    # a different start time: the pid now belongs to another process
    return not (start and _proc_start(pid) not in (None, start))


# -- the lock ---------------------------------------------------------------------------------------------

# run id -> the RunLock of this process holding it; an abandoned run's lock object is collected with it
_HELD: weakref.WeakValueDictionary[str, RunLock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class Holder:
    """The row of `_profiles_lock`: who holds the run lock (an empty `run_id`: nobody)."""

    run_id: str
    seq_no: int | None
    project: str | None
    pid: int | None
    host: str | None
    node: str | None
    acquired_at: datetime | None
    heartbeat_at: datetime | None

    COLUMNS = ("run_id", "seq_no", "project", "pid", "host", "node", "acquired_at", "heartbeat_at")

    @classmethod
    def from_row(cls, row: tuple) -> Holder:
        run_id, *rest = row
        return cls("" if run_id is None else str(run_id), *rest)

    def describe(self) -> str:
        what = f"run seq_no {self.seq_no}" if self.seq_no else "a run"
        if self.project:
            what += f" of project '{self.project}'"
        since = f", started {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC" if self.acquired_at else ""
        beat = f", last heartbeat {self.heartbeat_at:%H:%M:%S} UTC" if self.heartbeat_at else ""
        return f"{what} (pid {self.pid} on host {self.host}{since}{beat})"


class RunLock:
    """Take with `acquire()`; `heartbeat()` while working; `release()` when done (idempotent)."""

    def __init__(
        self,
        session: Session,
        schema: str,
        project: str,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS,
        poll_seconds: float = 0.5,
        race_attempts: int = 100,
        race_seconds: float = 30.0,
    ) -> None:
        self.session = session
        self.schema = schema
        self.project = project
        self.wait_seconds = wait_seconds
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.poll_seconds = poll_seconds
        self.race_attempts = race_attempts
        self.race_seconds = race_seconds
        self.run_id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.node = process_token(self.pid)
        self.held = False
        self.taken_over: list[Holder] = []  # stale holders this lock replaced
        # a tenth of the time after which another machine may take the lock over, at most a minute
        self.heartbeat_seconds = min(60.0, stale_after_seconds / 10)
        self._last_beat = time.monotonic()
        self._error = "another run took it"
        self._beating: threading.Thread | None = None
        self._stop_beating = threading.Event()
        self._beat_connected = threading.Event()

    def _where(self, run_id: str | None) -> exp.Expression:
        return exp.and_(registry.eq("name", registry.LOCK_NAME), registry.eq("run_id", run_id))

    def holder(self) -> Holder | None:
        rows = self.session.query(
            self.session.render(
                registry.select(
                    self.schema,
                    registry.LOCK,
                    registry.eq("name", registry.LOCK_NAME),
                    Holder.COLUMNS,
                )
            )
        )
        if not rows:
            return None
        holders = [Holder.from_row(r) for r in rows]
        return next((h for h in holders if h.run_id), Holder("", None, None, None, None, None, None, None))

    def is_stale(self, holder: Holder) -> bool:
        if holder.node == self.node:  # this very process: stale unless one of its runs still holds it
            return holder.run_id not in _HELD
        alive = process_alive(holder.node or "")
        if alive is not None:
            return not alive
        if holder.heartbeat_at is None:
            return True
        return now_utc() - holder.heartbeat_at > self.stale_after

    def acquire(self) -> None:
        """Take the lock, waiting up to `wait_seconds` for a live holder. A lost compare-and-set is retried
        at once; `race_attempts` of them, or `race_seconds` past the wait, and it is no race any more (the
        row cannot be written or read back): stop with an error naming the table."""
        session = self.session
        started = time.monotonic()
        deadline = started + self.wait_seconds
        announced = False
        attempts = 0
        while True:
            if attempts >= self.race_attempts or (attempts and time.monotonic() >= deadline + self.race_seconds):
                raise ProfilesError(
                    f"cannot take the run lock in {self.schema}.{registry.LOCK}: {attempts} attempts failed in "
                    f"{time.monotonic() - started:.1f}s; the last: {self._error}",
                    hint=f"the connection must be able to SELECT, INSERT and UPDATE {self.schema}.{registry.LOCK} "
                    "(see `profiles-dagster validate access`)",
                )
            current = self.holder()
            if current is None:  # the row comes with the table; someone deleted it: put it back
                attempts += 1
                self._error = "its row is not there (deleted, or not visible to this connection)"
                try:
                    session.run(
                        registry.insert(self.schema, registry.LOCK, {"name": registry.LOCK_NAME, "run_id": None})
                    )
                except Exception as exc:
                    self._lost(exc)
                continue
            if not current.run_id:
                if self._swap(None):
                    return
                attempts += 1
                time.sleep(random.uniform(0, 0.05))
                continue
            if current.run_id == self.run_id:
                self.held = True
                _HELD[self.run_id] = self
                return
            if self.is_stale(current):
                log.warning("taking over the run lock from %s, which is no longer running", current.describe())
                if self._swap(current.run_id):
                    self.taken_over.append(current)
                    return
                attempts += 1
                time.sleep(random.uniform(0, 0.05))
                continue
            if time.monotonic() >= deadline:
                waited = f" after waiting {self.wait_seconds:g}s" if self.wait_seconds else ""
                raise BusyError(
                    f"another run is using output schema '{self.schema}'{waited}: {current.describe()}",
                    hint="wait for it to finish, or set run_lock.wait_seconds in profiles_dagster.yaml to wait; "
                    "a killed run's lock is cleared automatically",
                )
            if not announced:
                log.info("waiting up to %gs for %s", self.wait_seconds, current.describe())
                announced = True
            time.sleep(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))

    def _lost(self, exc: Exception) -> None:
        """A write of the lock row failed: remember why, and end the failed transaction."""
        log.debug("lost the run lock race: %s", exc)
        self._error = summary(exc)
        with contextlib.suppress(Exception):
            self.session.execute("ROLLBACK")

    def _swap(self, expected: str | None) -> bool:
        """Compare-and-set the lock row from `expected` to this lock; True when this lock holds it now."""
        now = now_utc()
        values = {
            "run_id": self.run_id,
            "seq_no": None,
            "project": self.project,
            "pid": self.pid,
            "host": self.host,
            "node": self.node,
            "acquired_at": now,
            "heartbeat_at": now,
        }
        _HELD[self.run_id] = self  # before the row can name this lock: another thread must not see it stale
        try:
            self.session.run(registry.update(self.schema, registry.LOCK, values, self._where(expected)))
        except Exception as exc:  # a concurrent writer won (DuckDB: transaction conflict)
            self._lost(exc)
            _HELD.pop(self.run_id, None)
            return False
        current = self.holder()
        self.held = current is not None and current.run_id == self.run_id
        if not self.held:
            _HELD.pop(self.run_id, None)
        return self.held

    def claim(self, seq_no: int) -> None:
        """Note the seq_no this lock's run took, so a waiting run can name it."""
        self._update({"seq_no": seq_no, "heartbeat_at": now_utc()})

    def heartbeat(self, force: bool = False) -> None:
        """Tell waiting runs this one is alive; written at most every `heartbeat_seconds` unless forced (and
        not at all while `keep_alive`'s thread beats: two writers of one row can conflict on some engines)."""
        if not self.held or self.beating:
            return
        now = time.monotonic()
        if force or now - self._last_beat >= self.heartbeat_seconds:
            self._update({"heartbeat_at": now_utc()})
            self._last_beat = now

    @property
    def beating(self) -> bool:
        return self._beating is not None and self._beating.is_alive()

    def keep_alive(self, sessions: Callable[[], contextlib.AbstractContextManager[Session]]) -> None:
        """Beat every `heartbeat_seconds` from a thread with its own session (from `sessions`) until release.

        The run's own session is busy for as long as a statement runs, which on a large warehouse can be
        longer than `stale_after_seconds`; the beat must not wait for it. A thread that cannot connect says
        so once and leaves the beats to the step boundaries."""
        if not self.held or self.beating:
            return
        self._stop_beating.clear()
        self._beat_connected.clear()
        self._beating = threading.Thread(
            target=self._beat, args=(sessions,), name=f"profiles-lock-heartbeat-{self.run_id[:8]}", daemon=True
        )
        self._beating.start()

    def _beat(self, sessions: Callable[[], contextlib.AbstractContextManager[Session]]) -> None:
        where = self._where(self.run_id)
        try:
            with sessions() as session:
                self._beat_connected.set()
                while not self._stop_beating.wait(self.heartbeat_seconds):
                    try:
                        session.run(registry.update(self.schema, registry.LOCK, {"heartbeat_at": now_utc()}, where))
                    except Exception as exc:  # a conflict with the run's own write: the next beat tries again
                        log.debug("run lock heartbeat failed: %s", summary(exc))
                        with contextlib.suppress(Exception):
                            session.execute("ROLLBACK")
        except Exception as exc:  # connecting failed (the message is the engine's, secrets redacted)
            if not self._stop_beating.is_set():
                log.warning("the run lock's heartbeat thread stopped, beating at step boundaries only: %s", exc)

    def _stop(self) -> None:
        """Stop the beat thread; wait for a beat in flight (the release must not conflict with it), but not
        for a connection still being opened: a beat after the release matches no row."""
        thread, self._beating = self._beating, None
        if thread is not None:
            self._stop_beating.set()
            thread.join(timeout=60 if self._beat_connected.is_set() else 0)
            self._last_beat = time.monotonic()

    def release(self) -> None:
        self._stop()
        if not self.held:
            return
        empty = dict.fromkeys(Holder.COLUMNS)
        try:
            self._update(empty)
        finally:
            self.held = False
            _HELD.pop(self.run_id, None)

    def _update(self, values: dict[str, object]) -> None:
        self.session.run(registry.update(self.schema, registry.LOCK, values, self._where(self.run_id)))


# -- opening a session on a busy warehouse --------------------------------------------------------------------


@contextlib.contextmanager
def open_session(warehouse: WarehouseEngine, wait_seconds: float = 0.0, poll_seconds: float = 0.5) -> Iterator[Session]:
    """`warehouse.session()`, retrying while the warehouse says another process holds it (DuckDB's file lock)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cm = warehouse.session()
            session = cm.__enter__()
        except BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
            continue
        break
    try:
        yield session
    except BaseException as exc:
        if not cm.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        cm.__exit__(None, None, None)


def ensure_registry(session: Session, schema: str) -> None:
    """Create the output schema and the registry tables; add columns an older version did not have."""
    try:
        session.create_schema(schema)
    except Exception as exc:  # a concurrent first run may have created it just now
        if not _retry_ok(session, None, schema):
            raise ProfilesError(f"cannot create output schema '{schema}': {summary(exc)}") from exc
    for name, ddl in registry.create_statements(schema):
        try:
            session.run(ddl)
        except Exception as exc:  # as above: fine if the table exists now
            if not _retry_ok(session, name, schema):
                raise ProfilesError(f"cannot create the run registry table {schema}.{name}: {summary(exc)}") from exc
    for name in registry.COLUMNS:
        existing = {c for c, _ in session.columns(table(name, schema))}
        for ddl in registry.add_missing_columns(schema, name, existing):
            session.run(ddl)


def _retry_ok(session: Session, name: str | None, schema: str) -> bool:
    with contextlib.suppress(Exception):
        session.execute("ROLLBACK")
    try:
        if name is None:
            session.create_schema(schema)
            return True
        return session.table_exists(table(name, schema))
    except Exception:
        return False


__all__ = ["BusyError", "Holder", "ProfilesError", "RunLock", "ensure_registry", "open_session", "process_alive"]
