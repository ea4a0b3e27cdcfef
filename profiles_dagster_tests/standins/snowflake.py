"""Snowflake's stand-in: a fakesnow server (Snowflake's REST protocol over DuckDB) in its own venv.

fakesnow pins sqlglot ~=30.22 while the product pins 30.30, and needs snowflake-connector < 5; so the
server runs from a cached venv and the tests' connector (ours) talks to it over HTTP.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from profiles_dagster_tests.standins._venv import StandinError, venv
from profiles_dagster_tests.standins.postgres import free_port

REQUIREMENTS = ["fakesnow[server]==0.12.1", "snowflake-connector-python<5"]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise StandinError(
                f"{what} did not start (exit {process.poll()}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def fakesnow_server() -> Iterator[int]:
    """The port of a running fakesnow server (databases in memory, shared by all connections)."""
    folder = venv("fakesnow", REQUIREMENTS)
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="fakesnow-", suffix=".log")[1])
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(folder / "bin" / "fakesnow"), "-s", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log, "fakesnow")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.unlink(missing_ok=True)
