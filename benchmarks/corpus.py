"""Every project of a corpus of pb projects, tried as a new user would: validate, sample-data, run on DuckDB.

    python benchmarks/corpus.py                                  # ../shared/pb_corpus (found above the repo)
    python benchmarks/corpus.py --list LOADS_CORE.txt            # only the projects that list names
    python benchmarks/corpus.py path/to/projects --timeout 120 --memory-mb 2048

Each project is copied to a temporary folder (the corpus is never written to, nor copied into the repo)
and each command runs in its own process with a timeout and a memory cap, so one project that hangs or
grows cannot stop the table. The table: project, how far each command got, the run's steps, the rows of
the first entity's main feature view, the seconds of the three commands, and the first error in one line.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path("shared") / "pb_corpus"
DIALECTS: dict[str, str] = tomllib.loads((Path(__file__).with_name("corpus_dialects.toml")).read_text())["dialects"]
HEADER = ["project", "dialect", "validate", "sample-data", "run", "steps", "view rows", "seconds", "first error"]
COMMANDS = ("validate", "sample-data", "run")
NOT_REACHED = "-"
_STEP = re.compile(r"^(\S+)\s+(\S+)\s+([\d,]+) rows\s+(?:[\d.]+s|kept)$")
_SITE_CONFIG = re.compile(r"--site-config (\S+)\s*$", re.MULTILINE)


@dataclass
class Row:
    project: str
    status: dict[str, str] = field(default_factory=lambda: dict.fromkeys(COMMANDS, NOT_REACHED))
    steps: int | None = None
    view_rows: int | None = None
    seconds: float = 0.0
    error: str = ""

    def cells(self) -> list[object]:
        return [
            self.project,
            DIALECTS.get(self.project, "-"),
            *(self.status[c] for c in COMMANDS),
            NOT_REACHED if self.steps is None else self.steps,
            NOT_REACHED if self.view_rows is None else self.view_rows,
            round(self.seconds, 1),
            self.error,
        ]


def default_corpus() -> Path:
    """`../shared/pb_corpus` from the repo, or from the nearest folder above it that has one (a worktree)."""
    for parent in REPO.parents:
        if (parent / CORPUS).is_dir():
            return parent / CORPUS
    return REPO.parent / CORPUS


def project_names(folder: Path, listing: str | None) -> list[str]:
    """The projects to try: those a list file names (one a line; `#` comments), else every folder with a
    pb_project.yaml."""
    if listing:
        path = Path(listing) if Path(listing).is_file() else folder / listing
        lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
        return [line for line in lines if line]
    return sorted(p.parent.name for p in folder.glob("*/pb_project.yaml"))


def run_corpus(
    folder: Path,
    names: list[str],
    *,
    timeout: float = 300,
    memory_mb: int = 4096,
    rows: int = 1000,
    end_time: str | None = None,
    on_row=None,
) -> list[Row]:
    """Try each project; a row per project, in order (`on_row` sees each as it is done)."""
    end_time = end_time or datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    results = []
    with tempfile.TemporaryDirectory(prefix="pb_corpus_") as scratch:
        for name in names:
            row = _try_project(folder / name, Path(scratch), name, timeout, memory_mb, rows, end_time)
            results.append(row)
            if on_row:
                on_row(row)
    return results


def _try_project(
    source: Path, scratch: Path, name: str, timeout: float, memory_mb: int, rows: int, end_time: str
) -> Row:
    row = Row(name)
    if not (source / "pb_project.yaml").is_file():
        row.status["validate"] = "FAIL"
        row.error = f"no pb_project.yaml in {source}"
        return row
    work = scratch / name
    # symlinks stay links: `pb migrate` leaves one that points at the project itself
    shutil.copytree(source, work / "project", symlinks=True, ignore=shutil.ignore_patterns("output", "logs"))
    project = work / "project"
    _declare_dialect(project, name)
    home = work / "home"  # no ~/.pb/siteconfig.yaml of the user's: the project runs on sample data only
    home.mkdir()
    commands = {
        "validate": ["validate", "-p", str(project)],
        "sample-data": ["sample-data", "-p", str(project), "--rows", str(rows), "--end-time", end_time],
        "run": ["run", "-p", str(project), "--end_time", end_time],
    }
    last_stdout = ""
    for command in COMMANDS:
        argv = commands[command]
        if command == "run":
            site_config = _SITE_CONFIG.findall(last_stdout)
            argv += ["--site-config", site_config[-1]] if site_config else []
        started = time.perf_counter()
        status, last_stdout, error = _command(argv, home, timeout, memory_mb)
        row.seconds += time.perf_counter() - started
        row.status[command] = status
        if command == "run" and status == "ok":
            steps = [m for line in last_stdout.splitlines() if (m := _STEP.match(line.strip()))]
            row.steps = len(steps)
            views = [int(m.group(3).replace(",", "")) for m in steps if "/views/" in m.group(1)]
            row.view_rows = views[0] if views else None
        if status != "ok":
            row.error = error.replace(f"{project}/", "")  # paths inside the project, as in the corpus
            break
    return row


def _declare_dialect(project: Path, name: str) -> None:
    """`dialect:` in the copy's profiles_dagster.yaml: the warehouse the project's SQL is written for."""
    dialect = DIALECTS.get(name)
    settings = project / "profiles_dagster.yaml"
    if dialect and not settings.exists():
        settings.write_text(f"dialect: {dialect}\n")


def _command(argv: list[str], home: Path, timeout: float, memory_mb: int) -> tuple[str, str, str]:
    """Run `profiles-dagster <argv>` in its own capped process: (status, stdout, first error in one line)."""
    cap = memory_mb * 1024 * 1024

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    # the package of the repo this file is in, whatever is installed; no siteconfig of the user's
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "profiles_dagster.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            env=env,
            cwd=home,
        )
    except subprocess.TimeoutExpired:
        return "timeout", "", f"{argv[0]}: no answer in {timeout:g}s"
    if done.returncode == 0:
        return "ok", done.stdout, ""
    return "FAIL", done.stdout, first_error(done.stderr, done.returncode)


def first_error(stderr: str, returncode: int) -> str:
    """The CLI's `error:` line; a traceback's last line marked as one; a killed process's signal."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error:"):
            return line[len("error:") :].strip()
    if any(line.startswith("Traceback") for line in lines):
        return f"TRACEBACK {lines[-1]}"
    if isinstance(returncode, int) and returncode < 0:
        return f"killed by signal {-returncode} (memory cap?)"
    return lines[-1] if lines else f"exit code {returncode}"


def format_table(rows: list[Row], width: int = 160) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import table

    cells = [[*r.cells()[:-1], _short(r.error, width)] for r in rows]
    passed = {c: sum(1 for r in rows if r.status[c] == "ok") for c in COMMANDS}
    summary = ", ".join(f"{c} {n}/{len(rows)}" for c, n in passed.items())
    return f"{table(cells, HEADER)}\n\n{summary}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", help="a folder of pb projects (default: ../shared/pb_corpus)")
    parser.add_argument("--list", help="a file naming the projects to try, one a line (e.g. LOADS_CORE.txt)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per command (default: 300)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address space per command (default: 4096)")
    parser.add_argument("--rows", type=int, default=1000, help="sample rows per input (default: 1000)")
    parser.add_argument("--end-time", help="the run's end time, ISO 8601 (default: the start of today, UTC)")
    parser.add_argument("--width", type=int, default=160, help="characters of the first error shown")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder else default_corpus()
    if not folder.is_dir():
        parser.error(f"no corpus folder at {folder}")
    names = project_names(folder, args.list)
    print(f"{len(names)} project(s) from {folder}", file=sys.stderr)

    def progress(row: Row) -> None:
        print(f"  {row.project}: {' '.join(f'{c}={row.status[c]}' for c in COMMANDS)}", file=sys.stderr, flush=True)

    rows = run_corpus(
        folder,
        names,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        rows=args.rows,
        end_time=args.end_time,
        on_row=progress,
    )
    print(format_table(rows, args.width))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
