"""S3's stand-in: moto's server, beside DuckDB 1.5.5 with httpfs from its PyPI wheel, in a venv of their own.

Trap: DuckDB reads S3 only through its httpfs extension, which cannot be downloaded here, and the wheels on
the package index (`duckdb-extension-httpfs` up to 1.5.5, `duckdb-ext-httpfs` up to 1.4.4) are each built
for one DuckDB version; none matches the dev venv's DuckDB 2.0.0. So the product's DuckDB runs on S3 in
this venv: the repository on PYTHONPATH, the CLI (which imports no Dagster) as a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from profiles_dagster_tests.standins._venv import venv
from profiles_dagster_tests.standins.postgres import free_port
from profiles_dagster_tests.standins.snowflake import wait_for_port

REQUIREMENTS = [
    "duckdb==1.5.5",
    "duckdb-extension-httpfs==1.5.5",
    "moto[server]==5.2.5",
    "sqlglot==30.30.0",
    "pydantic>=2.7,<3",
    "jinja2>=3.1",
    "pyyaml>=6.0",
]
REPO = Path(__file__).resolve().parents[2]
# moto accepts any credentials; the product reads these the way boto3 does
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}


def python() -> Path:
    return venv("duckdb-s3", REQUIREMENTS) / "bin" / "python"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """The endpoint URL of a running moto S3 server on 127.0.0.1."""
    interpreter = python()
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(interpreter), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, process, log, "moto")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.unlink(missing_ok=True)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`profiles-dagster ARGS` on DuckDB 1.5.5 with httpfs, from this checkout."""
    return subprocess.run(
        [str(python()), "-m", "profiles_dagster.cli", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip
