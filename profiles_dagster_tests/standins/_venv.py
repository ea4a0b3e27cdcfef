"""Virtual environments for stand-ins whose pins clash with ours, cached by their pins.

A venv lives under ``$PROFILES_DAGSTER_STANDINS_CACHE`` (default ``~/.cache/profiles-dagster-standins``)
in a folder named after a hash of the Python version and the requirements, so a second run (and CI on
the same machine) reuses it. A lock serializes concurrent creators; a marker file says it is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


class StandinError(RuntimeError):
    """A stand-in could not start: tests fail with this message, they are never skipped."""


def cache_dir() -> Path:
    root = os.environ.get("PROFILES_DAGSTER_STANDINS_CACHE") or Path.home() / ".cache" / "profiles-dagster-standins"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv(name: str, requirements: list[str], *, timeout: float = 900) -> Path:
    """The venv's folder (``bin/python`` inside), creating it with pip on first use."""
    key = hashlib.sha256("\n".join([sys.version.split()[0], *requirements]).encode()).hexdigest()[:12]
    folder = cache_dir() / f"{name}-{key}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    lock_path = cache_dir() / f"{name}-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return folder
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(folder)
        log = cache_dir() / f"{name}-{key}.log"
        try:
            with open(log, "w") as out:
                subprocess.run(
                    [_base_python(), "-m", "venv", str(folder)], check=True, stdout=out, stderr=out, timeout=120
                )
                subprocess.run(
                    [
                        str(folder / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "-q",
                        *requirements,
                    ],
                    check=True,
                    stdout=out,
                    stderr=out,
                    timeout=timeout,
                )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise StandinError(f"could not create the {name} venv ({' '.join(requirements)}): {exc}\n{tail}") from exc
        marker.write_text("\n".join(requirements) + "\n")
    return folder


def _base_python() -> str:
    """The interpreter the current venv was made from (a venv's python can make venvs too)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else sys.executable
