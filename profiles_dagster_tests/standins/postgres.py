"""Postgres 15 from the machine's Debian package, as a throwaway cluster for one test session.

Postgres refuses to run as root: when the tests run as root, the server runs as an unprivileged user
created for it. Data lives in a temporary folder; the server stops at the end of the session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from profiles_dagster_tests.standins._venv import StandinError

SERVICE_USER = "profiles_pg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bindir() -> Path:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise StandinError("no Postgres server found: install Debian's postgresql-15 (apt-get install postgresql-15)")
    return Path(found[-1]).parent


def _as_service_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True)
    return ["runuser", "-u", SERVICE_USER, "--"]


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"
    password: str = "postgres"
    dbname: str = "postgres"

    def connect(self, dbname: str | None = None, user: str | None = None, password: str | None = None):
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=dbname or self.dbname,
            user=user or self.user,
            password=password or self.password,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        with self.connect() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}"')
            con.execute(f'CREATE DATABASE "{name}"')
        return name

    def target(self, dbname: str) -> dict:
        """A fresh database, as a siteconfig connection (pb's keys) reaches it."""
        self.create_database(dbname)
        return {
            "type": "postgres", "host": self.host, "port": self.port, "dbname": dbname,
            "user": self.user, "password": self.password, "sslmode": "disable",
        }  # fmt: skip


@contextlib.contextmanager
def postgres_server(*, auth: str = "md5", settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """Start a fresh cluster (md5 password auth, fsync off) on a free port; stop it afterwards."""
    bins = bindir()
    prefix = _as_service_user()
    folder = Path(tempfile.mkdtemp(prefix="profiles-pg-"))
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    pwfile = folder / "pw"
    pwfile.write_text("postgres\n")
    if prefix:
        shutil.chown(folder, SERVICE_USER)
        shutil.chown(sockets, SERVICE_USER)
        shutil.chown(pwfile, SERVICE_USER)
    log = folder / "server.log"
    process = None
    started = time.perf_counter()
    try:
        init = subprocess.run(
            [*prefix, str(bins / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
             f"--auth={auth}", "-E", "UTF8", "--locale=C"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if init.returncode:
            raise StandinError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        port = free_port()
        with open(log, "w") as out:
            if prefix:
                shutil.chown(log, SERVICE_USER)
            process = subprocess.Popen(
                [*prefix, str(bins / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=50",
                 *[a for k, v in (settings or {}).items() for a in ("-c", f"{k}={v}")]],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = PostgresServer("127.0.0.1", port)
        deadline = time.monotonic() + 60
        while True:
            try:
                server.connect().close()
                break
            except Exception as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise StandinError(
                        f"Postgres did not start: {exc}\n{log.read_text(errors='replace')[-2000:]}"
                    ) from exc
                time.sleep(0.1)
        server.start_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)
