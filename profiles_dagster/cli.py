"""`profiles-dagster`: pb's chores (validate, compile, run) without Dagster's daemon or DAGSTER_HOME."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from profiles_dagster.clock import default_end_time
from profiles_dagster.describe import SHOW, show
from profiles_dagster.errors import ErrorCollector, ProfilesError, ProfilesErrors, did_you_mean
from profiles_dagster.loading import load
from profiles_dagster.offline import check_offline
from profiles_dagster.plan.planner import build_plan, model_refs
from profiles_dagster.plan.steps import RunPlan, StepKey
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.model import Project
from profiles_dagster.project.siteconfig import Connection, find_site_config, load_connection
from profiles_dagster.project.timegrains import GRAINS
from profiles_dagster.run.sql_files import sql_folder, write_step_sql
from profiles_dagster.runner import ProfilesRun, StepResult, parse_seq_no, parse_time, run_all
from profiles_dagster.scaffold import init_connection, init_project
from profiles_dagster.sql.registry import Status
from profiles_dagster.warehouse import EMBEDDED_ENGINE


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
    """Each command registers its parser and its handler (`set_defaults(handler=...)`)."""
    parser = argparse.ArgumentParser(prog="profiles-dagster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser(
        "validate",
        help="check the project: YAML, references, templates, and every step's SQL run on empty inputs in a "
        "scratch DuckDB (nothing is written to the project's database)",
    )
    validate.add_argument(
        "what",
        nargs="?",
        choices=["project", "access"],
        default="project",
        help="`access`: check the connection can read the inputs and write the output schema",
    )
    validate.add_argument(
        "--no-prepare",
        dest="no_prepare",
        action="store_true",
        help="only compile the SQL; do not prepare every step (on empty inputs in a scratch DuckDB, on a "
        "Postgres/Redshift connection in a transaction rolled back, on Snowflake/BigQuery/Databricks in a scratch "
        "schema dropped at the end): faster, and needs no connection",
    )
    _common(validate)
    validate.set_defaults(handler=_validate)
    compile_ = sub.add_parser("compile", help="write each step's SQL under <project>/output/<target>/seq_no_<n>/")
    _common(compile_, times=True)
    _add_run_selection(compile_, force=False)
    compile_.set_defaults(handler=_compile)
    run = sub.add_parser("run", help="materialize every step and repoint the pb views")
    _common(run, times=True)
    _add_full_refresh(run)
    _add_run_selection(run, force=True)
    run.set_defaults(handler=_run)
    show = sub.add_parser("show", help="describe the project: models, dependencies, ...")
    show.add_argument("what", choices=sorted(SHOW), help="what to show")
    show.add_argument("--dot", action="store_true", help="dependencies as Graphviz dot")
    _add_report_options(show)
    _common(show)
    show.set_defaults(handler=_show)
    init = sub.add_parser("init", help="start a project or a connection")
    init_sub = init.add_subparsers(dest="init_what", required=True)
    project = init_sub.add_parser("pb-project", help="write a sample project that runs on DuckDB as is")
    project.add_argument("-o", "--output", required=True, help="folder to create")
    project.set_defaults(handler=_init_project)
    connection = init_sub.add_parser("connection", help="add a connection to a siteconfig.yaml")
    connection.add_argument("--site-config", default=str(Path.home() / ".pb" / "siteconfig.yaml"))
    connection.add_argument("--name", required=True, help="the name pb_project.yaml's `connection:` uses")
    connection.add_argument("--type", required=True, help="duckdb, postgres, redshift, snowflake, bigquery, ...")
    connection.add_argument("--target", default="dev")
    connection.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting, e.g. --set host=db.example.com (repeat)",
    )
    connection.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="KEY=ENV_VAR",
        help="a secret read from an environment variable at run time, e.g. "
        "--secret password=PG_PASSWORD (repeat); never written in clear",
    )
    connection.set_defaults(handler=_init_connection)
    _add_cleanup(sub)
    _add_sample_data(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ProfilesError as exc:
        for line in _error_lines(exc):
            print(line, file=sys.stderr)
        if args.handler is _validate:
            print(_count_line(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `profiles-dagster show ... | head`
        return 0


def _error_lines(exc: ProfilesError) -> list[str]:
    """One `error:` line per problem (a message may span lines: a template's context)."""
    errors = exc.errors if isinstance(exc, ProfilesErrors) else [exc]
    lines = [f"error: {err}" for err in errors]
    if isinstance(exc, ProfilesErrors) and exc.truncated:
        lines.append(f"... and {exc.truncated} more error(s), not listed")
    return lines


def _count_line(exc: ProfilesError) -> str:
    count = exc.count if isinstance(exc, ProfilesErrors) else 1
    return f"validate: {count} error(s)" + (" (the first 50 are listed)" if count > len(_error_lines(exc)) else "")


# engines whose DDL rolls back with a transaction: validate prepares the SQL on them (run/prepare_server.py)
PREPARED_ENGINES = ("postgres", "redshift")
# engines whose DDL does not roll back: validate prepares in a scratch schema dropped at the end
# (run/prepare_scratch.py)
SCRATCH_ENGINES = ("snowflake", "bigquery", "databricks")
NOT_PREPARED_WHY = "validate prepares only on DuckDB, Postgres, Redshift, Snowflake, BigQuery and Databricks"


def _validate(args: argparse.Namespace) -> int:
    if args.what == "access":
        from profiles_dagster.warehouse.access import print_access_report

        loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
        return print_access_report(loaded)
    project = load_project(args.project_dir)
    plan = build_plan(project)
    errors = ErrorCollector()
    connection = _offline_connection(project, args)
    engine = connection.type if connection is not None else EMBEDDED_ENGINE
    notes = [*project.notes, *plan.notes]
    if args.no_prepare or engine not in (EMBEDDED_ENGINE, *PREPARED_ENGINES, *SCRATCH_ENGINES):
        # without a connection and without preparing: the SQL compiled for the warehouse it is written in
        dialect = engine if connection is not None else project.settings.sql_dialect(EMBEDDED_ENGINE)
        compiled = check_offline(project, plan, dialect, errors)
        how = f"compiles for {dialect} (compiled, not prepared" + (
            ": --no-prepare)" if args.no_prepare else f" on {engine}: {NOT_PREPARED_WHY})"
        )
    elif engine in PREPARED_ENGINES:
        from profiles_dagster.run.prepare_server import prepare_on_server
        from profiles_dagster.warehouse import warehouse_for

        assert connection is not None
        # every step prepared on the connection in one transaction that is rolled back: nothing is written
        compiled = prepare_on_server(project, plan, warehouse_for(connection), errors)
        how = f"runs on {engine} (prepared against the connection's tables, in a transaction rolled back)"
    elif engine in SCRATCH_ENGINES:
        from profiles_dagster.run.prepare_scratch import prepare_in_scratch
        from profiles_dagster.warehouse import warehouse_for

        assert connection is not None
        # compiled first without the connection, so what cannot be written for the engine is reported even when
        # the connection cannot be opened; then every step that compiled is prepared: its material created empty
        # in a scratch schema dropped at the end (no data read, nothing left)
        check_offline(project, plan, engine, errors)
        compiled = prepare_in_scratch(project, plan, warehouse_for(connection), errors)
        how = (
            f"runs on {engine} (prepared against the connection's tables, empty materials in a scratch schema "
            "dropped at the end)"
        )
    else:
        from profiles_dagster.run.prepare import prepare
        from profiles_dagster.warehouse.duckdb import DuckDBEngine

        duckdb = DuckDBEngine.from_connection(connection) if connection is not None else None
        assert duckdb is None or isinstance(duckdb, DuckDBEngine)
        prepared = prepare(project, plan, duckdb, errors)  # compiles each step once, then runs it
        compiled = prepared.steps
        notes.extend(prepared.notes)
        if prepared.inferred:
            notes.append(
                f"input(s) {', '.join(prepared.inferred)}: no table in "
                + (f"{duckdb.database}" if duckdb is not None else "a DuckDB file (no connection found)")
                + ", prepared with the columns the project reads, typed from their use"
            )
        how = f"runs on {engine} (prepared on empty inputs)"
    errors.raise_if_any()
    print(
        f"{project.name}: {len(project.entities)} entit(y/ies), {len(project.inputs)} input(s), "
        f"{len(project.vars)} var(s), {len(plan.steps)} step(s); SQL of {compiled} step(s) {how}: OK"
    )
    for note in notes:
        print(f"note: {note}")
    print(f"validate: 0 errors, {len(notes)} note(s)")
    return 0


def _offline_connection(project: Project, args: argparse.Namespace) -> Connection | None:
    """The project's connection if a siteconfig names it (its secrets set), else None: validate then
    prepares on the embedded engine, where `sample-data` and a first local run go."""
    try:
        config = find_site_config(project.root, args.site_config)
        return load_connection(config, project.file.connection, args.target)
    except ProfilesError:
        if args.site_config:
            raise
        return None


def _compile(args: argparse.Namespace) -> int:
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    target = loaded.connection.target if loaded.connection else "default"
    selected = select_model_refs(loaded.plan, args.model_refs)
    _note_seq_no_times(args)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(
            loaded.project,
            loaded.plan,
            session,
            selected=selected,
            end_time=parse_time(args.end_time),
            begin_time=parse_time(args.begin_time),
            seq_no=args.seq_no,
        )
        run.start(check_inputs=False)
        out = sql_folder(loaded.project.root, target, run.seq_no)
        for n, step in enumerate(run.steps, start=1):
            write_step_sql(out, n, step, run.compiled_sql(step))
        run.finish(Status.COMPILED)
    print(f"compiled {len(run.steps)} step(s) into {out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    start = time.perf_counter()
    if args.force and parse_seq_no(args.seq_no) is None:
        raise ProfilesError("--force rebuilds the materials of an earlier run: give it with --seq_no N")
    selected = select_model_refs(loaded.plan, args.model_refs)
    _note_seq_no_times(args)
    for note in [*loaded.project.notes, *loaded.plan.notes]:
        print(f"note: {note}")
    if loaded.project.time_grain != "tick":
        grain = loaded.project.time_grain
        print(f"note: default_time_grain {grain}: the run computes as of the last {grain} boundary before its end")
    for coarser in sorted({s.grain for s in loaded.plan.steps if s.grain}, key=GRAINS.index):
        print(f"note: time_grain {coarser}: the steps keyed .../at_{coarser} compute as of the last {coarser} boundary")

    def show(result: StepResult) -> None:
        if result.stats.get("kept"):
            print(f"{result.step.path:<45} {result.table.name:<58} {result.row_count:>10,} rows     kept", flush=True)
            return
        print(
            f"{result.step.path:<45} {result.table.name:<58} {result.row_count:>10,} rows {result.seconds:>8.2f}s",
            flush=True,
        )

    published: list[str] = []
    newer: list[int] = []

    def on_publish(views: list[str], newer_run: int | None) -> None:
        published.extend(views)
        newer.extend([newer_run] if newer_run else [])

    seq_no, results = run_all(
        loaded.project,
        loaded.plan,
        loaded.warehouse,
        selected=selected,
        end_time=parse_time(args.end_time),
        begin_time=parse_time(args.begin_time),
        on_result=show,
        full_refresh=args.full_refresh,
        seq_no=args.seq_no,
        force=args.force,
        on_publish=on_publish,
        sql_output=(loaded.project.root, loaded.connection.target if loaded.connection else "default"),
    )
    kept = sum(1 for r in results if r.stats.get("kept"))
    built = f"{len(results) - kept} step(s) built, {kept} kept from the run" if kept else f"{len(results)} step(s)"
    head = f"run seq_no {seq_no}: {built} in {time.perf_counter() - start:.2f}s; views in schema "
    if newer:
        print(f"{head}{loaded.warehouse.output_schema} stay on the newer complete run {newer[0]}")
    else:
        print(f"{head}{loaded.warehouse.output_schema}: {', '.join(sorted(published)) or '(none)'}")
    return 0


def _note_seq_no_times(args: argparse.Namespace) -> None:
    if parse_seq_no(args.seq_no) is not None and (args.end_time or args.begin_time):
        print(f"note: --seq_no {args.seq_no} reuses that run's end and begin time; --end_time/--begin_time are ignored")


def select_model_refs(plan: RunPlan, refs: Sequence[str] | None) -> set[StepKey] | None:
    """pb's `--model_refs models/a,models/b`: those models' steps and every step they read."""
    if not refs:
        return None
    names = [r.strip() for ref in refs for r in ref.split(",") if r.strip()]
    by_ref = model_refs(plan)
    chosen: set[StepKey] = set()
    for name in names:
        keys = by_ref.get(name) or by_ref.get(f"models/{name}")
        if keys is None:
            raise ProfilesError(
                f"--model_refs: no model '{name}' in the project",
                hint=did_you_mean(name, by_ref) or f"models: {', '.join(sorted(by_ref))}",
            )
        chosen.update(keys)
    return chosen | plan.upstream(chosen)


def _show(args: argparse.Namespace) -> int:
    return show(args)


def _add_full_refresh(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full-refresh",
        "--full_refresh",
        "--rebase_incremental",
        "--rebase-incremental",
        dest="full_refresh",
        action="store_true",
        help="rebuild incremental steps (the id stitcher) from all input rows instead of extending the previous run",
    )


def _add_run_selection(parser: argparse.ArgumentParser, *, force: bool) -> None:
    parser.add_argument(
        "--seq_no",
        "--seq-no",
        dest="seq_no",
        help="pb's --seq_no: continue run N (its end/begin time; the steps it completed are kept), `latest`, or "
        "`new` (default)",
    )
    parser.add_argument(
        "-m",
        "--model_refs",
        "--model-refs",
        dest="model_refs",
        action="append",
        metavar="REFS",
        help="only these models (comma-separated, e.g. models/user_id_stitcher,models/user_feature_view) "
        "and the steps they read",
    )
    if force:
        parser.add_argument(
            "--force",
            action="store_true",
            help="with --seq_no: rebuild the run's materials even where it completed them",
        )


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=int, default=10, help="idstitcher-report: how many ids/profiles to list")
    parser.add_argument(
        "--seq_no", "--seq-no", dest="seq_no", help="idstitcher-report: the graph of run N (default: the latest)"
    )


def _idstitcher_report(args: argparse.Namespace) -> str:
    """`show idstitcher-report`: the health of each entity's latest identity graph (read-only)."""
    from profiles_dagster.plan.steps import StepKind
    from profiles_dagster.sql import registry
    from profiles_dagster.sql import stitcher_health as health_sql
    from profiles_dagster.sql.compiler import CompileContext, compile_step
    from profiles_dagster.sql.names import table
    from profiles_dagster.sql.stitcher import find_previous

    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    project, plan = loaded.project, loaded.plan
    schema = loaded.warehouse.output_schema
    top = max(1, args.top)
    reports = []
    with loaded.warehouse.session() as session:
        wanted = parse_seq_no(args.seq_no)
        for step in [s for s in plan.steps if s.kind is StepKind.ID_STITCHER]:
            found = registry.latest_existing_material(
                session,
                session.table_exists,
                schema,
                project.name,
                step.path,
                step.content_hash,
                seq_no=wanted if isinstance(wanted, int) else None,
            )
            if found is None:
                of_run = f" in run {wanted}" if isinstance(wanted, int) else ""
                raise ProfilesError(
                    f"{step.path} has no complete material with its current definition{of_run} in schema {schema}; "
                    "run the project first (profiles-dagster run)"
                )
            name, seq_no = found.table_name, found.seq_no
            stitched = table(name, schema)
            previous, _ = find_previous(session, schema, project.name, step.path, step.content_hash, lambda t: True)
            point = previous.checkpoint if previous else None
            # the observations, for degrees: compiled against the latest materials of what the stitcher reads
            materials = {step.key: stitched}
            for dep in plan.ordered(plan.upstream({step.key})):
                latest = registry.latest_material_row(session, schema, project.name, dep.path, dep.content_hash)
                if latest is not None:
                    materials[dep.key] = table(latest.table_name, schema)
            observations = None
            if all(d.key in materials for d in plan.ordered(plan.upstream({step.key}))):
                source_dialect = project.settings.sql_dialect(session.dialect)
                context = CompileContext(
                    project, plan, session.dialect, source_dialect, materials, default_end_time(), input_schema=schema
                )
                observations = compile_step(step, context).observations
            main = project.entities[step.entity].main_id_column
            health = health_sql.collect(
                lambda q: session.query(session.render(q)),
                stitched,
                main,
                observations=observations,
                largest=top,
                degree_limit=top,
                dialect=session.dialect,
            )
            limits = project.settings.checks.id_stitcher.max_ids_per_profile
            over = {t: int(v.warn if v.warn is not None else v.error) for t, v in limits.items() if (v.warn or v.error)}
            title = f"id stitcher {step.path}: {schema}.{name} (run {seq_no})"
            if point is not None and point.watermark is not None:
                title += f"; newest occurred_at {point.watermark}, next run re-reads after {point.window_start}"
            reports.append(health_sql.format_report(title, health, over=over))
    if not reports:
        raise ProfilesError("the project has no id stitcher")
    return "\n\n".join(reports)


SHOW["idstitcher-report"] = _idstitcher_report


def _init_project(args: argparse.Namespace) -> int:
    path = init_project(Path(args.output))
    print(f"wrote a sample project to {path}; run it with: profiles-dagster run -p {path}")
    return 0


def _init_connection(args: argparse.Namespace) -> int:
    path = init_connection(
        Path(args.site_config).expanduser(), args.name, args.type, args.target, args.set, args.secret
    )
    print(f"wrote connection '{args.name}' (target {args.target}) to {path}")
    return 0


def _add_cleanup(sub) -> None:
    parser = sub.add_parser(
        "cleanup",
        help="drop materials older than the last N complete runs, and what failed or killed runs left behind",
    )
    _common(parser)
    parser.add_argument(
        "--keep",
        type=int,
        help="complete runs whose materials stay (default: retention_runs in "
        "profiles_dagster.yaml, else 3); tables a view points at or a kept run read always stay",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be dropped; drop nothing")
    parser.set_defaults(handler=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    from profiles_dagster.lock import open_session
    from profiles_dagster.maintenance import cleanup

    if args.keep is not None and args.keep < 1:
        raise ProfilesError(f"--keep must be at least 1, got {args.keep}")
    loaded = load(args.project_dir, site_config=args.site_config, target=args.target)
    with open_session(loaded.warehouse, loaded.project.settings.run_lock.wait_seconds) as session:
        report = cleanup(session, loaded.project, loaded.plan, keep=args.keep, dry_run=args.dry_run)
    for note in report.recovered:
        print(f"note: {note}")
    verb = "would drop" if args.dry_run else "dropped"
    for drop in report.plan.drops:
        if args.dry_run or drop.name in report.dropped:
            print(f"{verb} {drop.kind.lower()} {drop.name}: {drop.reason}")
    for error in report.errors:
        print(f"could not drop {error}", file=sys.stderr)
    count = len(report.plan.drops) if args.dry_run else len(report.dropped)
    print(
        f"{verb} {count} object(s) in schema {loaded.warehouse.output_schema}; kept {len(report.plan.kept)} "
        f"material(s) of runs {', '.join(map(str, report.plan.keep_runs)) or 'none'} and those views point at"
    )
    return 1 if report.errors else 0


def _add_sample_data(sub) -> None:
    from profiles_dagster.sampledata import DEFAULT_ROWS

    parser = sub.add_parser(
        "sample-data",
        help="write plausible rows into every input table the project reads, to try it with no warehouse",
    )
    _common(parser)
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same rows (default: 0)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows per input (default: {DEFAULT_ROWS})")
    parser.add_argument(
        "--duckdb",
        help="a DuckDB file to write to, with a siteconfig beside it that points the project's connection at it "
        "(default when the connection is not DuckDB: <project>/output/sample_data/<project name>_sample.duckdb)",
    )
    parser.add_argument(
        "--end_time",
        "--end-time",
        dest="end_time",
        help="ISO 8601: sample events fall in the 90 days before it (default: the start of today, UTC)",
    )
    parser.set_defaults(handler=_sample_data)


def _sample_data(args: argparse.Namespace) -> int:
    from profiles_dagster.sampledata import write_sample_data

    end_time = parse_time(args.end_time) or default_end_time().replace(hour=0, minute=0, second=0, microsecond=0)
    written = write_sample_data(
        args.project_dir,
        seed=args.seed,
        rows=args.rows,
        end_time=end_time,
        site_config=args.site_config,
        target=args.target,
        duckdb_path=args.duckdb,
    )
    for note in written.notes:
        print(f"note: {note}")
    for name, (table, rows) in written.tables.items():
        print(f"input {name}: {rows:,} rows in {table}")
    where = written.destination
    print(f"wrote {len(written.tables)} input table(s) to {where.engine.database}")
    if where.site_config is not None:
        if where.written:
            print(f"wrote {where.site_config}, the project's connection on that file")
        print(f"run it with: profiles-dagster run -p {args.project_dir} --site-config {where.site_config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
