"""`profiles-dagster`: pb's chores (validate, compile, run) without Dagster's daemon or DAGSTER_HOME."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.runner import ProfilesRun, StepResult, parse_time, run_all


def _common(parser: argparse.ArgumentParser, times: bool = False) -> None:
    parser.add_argument("-p", "--project-dir", default=".", help="folder with pb_project.yaml (default: .)")
    parser.add_argument(
        "--site-config",
        help="pb-style siteconfig.yaml (default: $PROFILES_SITE_CONFIG, the project folder, ~/.pb/siteconfig.yaml)",
    )
    parser.add_argument("-t", "--target", help="target of the project's connection (default: its `target`)")
    if times:
        parser.add_argument(
            "--begin_time", "--begin-time", dest="begin_time", help="ISO 8601, e.g. 2025-11-01T00:00:00Z"
        )
        parser.add_argument("--end_time", "--end-time", dest="end_time", help="ISO 8601 (default: now)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="profiles-dagster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _common(sub.add_parser("validate", help="load and plan the project; check every SQL fragment compiles"))
    _common(
        sub.add_parser("compile", help="write each step's SQL under <project>/output/<target>/seq_no_<n>/"), times=True
    )
    _common(sub.add_parser("run", help="materialize every step and repoint the pb views"), times=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"validate": _validate, "compile": _compile, "run": _run}[args.command](args)
    except ProfilesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _validate(args: argparse.Namespace) -> int:
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    project = loaded.project
    print(
        f"{project.name}: {len(project.entities)} entit(y/ies), {len(project.inputs)} input(s), "
        f"{len(project.vars)} var(s), {len(loaded.plan.steps)} step(s): OK"
    )
    for note in project.notes:
        print(f"note: {note}")
    return 0


def _compile(args: argparse.Namespace) -> int:
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    target = loaded.connection.target if loaded.connection else "default"
    with loaded.warehouse.session() as session:
        run = ProfilesRun(
            loaded.project,
            loaded.plan,
            session,
            end_time=parse_time(args.end_time),
            begin_time=parse_time(args.begin_time),
        )
        run.start(check_inputs=False)
        out = loaded.project.root / "output" / target / f"seq_no_{run.seq_no}"
        out.mkdir(parents=True, exist_ok=True)
        for n, step in enumerate(run.steps, start=1):
            path = out / f"{n:02d}_{step.path.replace('/', '__')}.sql"
            path.write_text(run.compiled_sql(step) + "\n", encoding="utf-8")
        run.finish("compiled")
    print(f"compiled {len(run.steps)} step(s) into {out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    start = time.perf_counter()

    def show(result: StepResult) -> None:
        print(
            f"{result.step.path:<45} {result.table.name:<58} {result.row_count:>10,} rows {result.seconds:>8.2f}s",
            flush=True,
        )

    seq_no, results = run_all(
        loaded.project,
        loaded.plan,
        loaded.warehouse,
        end_time=parse_time(args.end_time),
        begin_time=parse_time(args.begin_time),
        on_result=show,
    )
    views = sorted(r.step.view_name for r in results if r.step.view_name)
    print(
        f"run seq_no {seq_no}: {len(results)} step(s) in {time.perf_counter() - start:.2f}s; "
        f"views in schema {loaded.warehouse.output_schema}: {', '.join(views)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
