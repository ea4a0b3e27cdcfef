"""BigQuery's stand-in: bqemulator (BigQuery's REST API over DuckDB) in its own venv.

Trap: it runs `INSTALL spatial` at start, which needs the internet; the extension comes from the PyPI
wheel duckdb-extension-spatial instead (built for one DuckDB version, hence duckdb==1.5.5 there), installed
into a HOME of its own inside the cached venv.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from profiles_dagster_tests.standins._venv import StandinError, venv
from profiles_dagster_tests.standins.postgres import free_port
from profiles_dagster_tests.standins.snowflake import wait_for_port

REQUIREMENTS = ["bqemulator==1.4.0", "duckdb==1.5.5", "duckdb-extension-spatial==1.5.5", "numpy"]
PROJECT = "test-project"

_INSTALL_SPATIAL = """
import pathlib, duckdb, duckdb_extension_spatial
path = next(pathlib.Path(duckdb_extension_spatial.__file__).parent.glob("extensions/*/spatial.duckdb_extension"))
duckdb.connect().execute(f"INSTALL '{path}'")
"""


def _home(folder: Path) -> Path:
    home = folder / "home"
    marker = home / ".spatial-installed"
    if not marker.exists():
        home.mkdir(exist_ok=True)
        done = subprocess.run(
            [str(folder / "bin" / "python"), "-c", _INSTALL_SPATIAL],
            env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode:
            raise StandinError(f"could not install DuckDB's spatial extension for bqemulator: {done.stderr[-2000:]}")
        marker.write_text("ok\n")
    return home


@contextlib.contextmanager
def bqemulator() -> Iterator[int]:
    """The REST port of a running, in-memory bqemulator for project `test-project`."""
    folder = venv("bqemulator", REQUIREMENTS)
    home = _home(folder)
    rest, grpc = free_port(), free_port()
    log = Path(tempfile.mkstemp(prefix="bqemulator-", suffix=".log")[1])
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(folder / "bin" / "bqemulator"), "start", "--rest-port", str(rest), "--grpc-port", str(grpc),
             "--project", PROJECT, "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(home)},
        )  # fmt: skip
    try:
        wait_for_port(rest, process, log, "bqemulator")
        yield rest
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.unlink(missing_ok=True)
