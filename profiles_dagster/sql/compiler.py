"""One run step -> the SQL that builds its material, as sqlglot trees rendered for the engine's dialect."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.derefs import resolve_deref
from profiles_dagster.plan.payloads import (
    AllPayload,
    CohortPayload,
    FeaturesPayload,
    MappedPayload,
    VarTablePayload,
    ViewPayload,
)
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.plan.vars import PlannedVar, cohort_entities
from profiles_dagster.project.gotime import GoTime
from profiles_dagster.project.model import IdStitcher, Input, Origin, Project, SqlModel
from profiles_dagster.project.schema import InputId, Window
from profiles_dagster.project.templating import TemplateContext, project_macros, render
from profiles_dagster.project.timegrains import boundary
from profiles_dagster.sql import merges
from profiles_dagster.sql.dialects import traits_of
from profiles_dagster.sql.fragments import (
    VAR_PREFIX,
    Where,
    bind_vars,
    literal_for,
    parse_expression,
    parse_query,
    parse_statements,
    var_placeholder,
)
from profiles_dagster.sql.ids import filtered_id, qualify, rendered_select
from profiles_dagster.sql.increments import Increments
from profiles_dagster.sql.lineage import output_columns
from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.names import col, ident, input_table, table
from profiles_dagster.sql.transpile import UnfaithfulError, semistructured_postgres, translate, types
from profiles_dagster.sql.transpile.frames import whole_partition_by_default
from profiles_dagster.sql.transpile.semistructured import holds_variant as _holds_json


def holds_variant(value: exp.Expr) -> bool:
    """A translated value that is a VARIANT on the engine (DuckDB's JSON, Postgres' jsonb)."""
    return _holds_json(value) or semistructured_postgres.holds_variant(value)


INPUT_ROW_ID = "input_row_id"
# pb's name for the entity's main id: in an input var's `window.partition_by` (its docs' example uses it), and
# as the type of an id whose column holds the main id itself
RUDDER_ID = "rudder_id"


def csv_path(project: Project, name: str) -> Path:
    """A `csv:` input's file; relative paths are relative to the project folder."""
    path = Path(project.inputs[name].spec.app_defaults.csv or "").expanduser()
    return path if path.is_absolute() else (project.root / path).resolve()


def file_table_name(name: str, seq_no: int) -> str:
    """The table run `seq_no` loads a `csv:`/`s3:` input into where the engine cannot read it in place: named
    as the run's scratch tables (`_pd_<hex>_<seq_no>_...`), which cleanup and retention drop with the run."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"_pd_{digest}_{seq_no}_file_{name}"[:63]  # Postgres keeps 63 bytes of a name


# Aggregates that skip NULLs, so `agg(CASE WHEN where THEN x END)` equals `agg(x) ... WHERE where`:
# that lets all vars of one input share one aggregate pass.
_NULL_SKIPPING = (
    exp.Min,
    exp.Max,
    exp.Sum,
    exp.Avg,
    exp.Count,
    exp.ApproxDistinct,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
    exp.Median,
)
# Of those, the ones that are NULL when no row passes: as a var's whole select they need no guard for that
_NULL_WHEN_NO_ROWS = tuple(a for a in _NULL_SKIPPING if a not in (exp.Count, exp.ApproxDistinct))

# Functions the warehouses accept only with an OVER clause (Snowflake, Postgres, DuckDB alike)
_WINDOW_ONLY = (
    exp.FirstValue,
    exp.LastValue,
    exp.NthValue,
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.PercentRank,
    exp.CumeDist,
    exp.Ntile,
    exp.Lag,
    exp.Lead,
)
_WINDOW_ONLY_NAMES = {"ratio_to_report", "conditional_true_event", "conditional_change_event"}


def _bare(tree: exp.Expr, wanted: Callable[[exp.Expr], bool]) -> exp.Expr | None:
    """The first node of a var's select that `wanted` picks outside any OVER clause and any subquery: what
    the var's own query evaluates, as pb writes it."""
    for node in tree.walk():
        if not wanted(node):
            continue
        parent = node.parent
        while parent is not None and not isinstance(parent, exp.Window | exp.Query):
            parent = parent.parent
        if parent is None:
            return node
    return None


def _window_only(node: exp.Expr) -> bool:
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in _WINDOW_ONLY_NAMES
    return isinstance(node, _WINDOW_ONLY)


def _aggregate(node: exp.Expr) -> bool:
    return isinstance(node, exp.AggFunc) or _window_only(node)


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
        return node.sql_name().lower()
    return node.name


# parsed and translated fragments by (rendered text, source dialect, engine dialect): pure functions of the key
_FRAGMENTS: dict[tuple[str, str, str, str], tuple[exp.Expr, bool]] = {}  # (tree, a rule asked a type)
_FRAGMENTS_KEPT = 20_000
_VAR_REFS = re.compile(re.escape(VAR_PREFIX) + r"(\w+)")
_SIGNATURES: dict[int, tuple[dict[str, exp.DataType], str]] = {}  # id(columns) -> (columns, their text)


_PARSED: dict[tuple[str, str], exp.Expr] = {}  # a fragment's text parsed, before types and translation


def _parsed(rendered: str, dialect: str, where: Where) -> exp.Expr:
    """The fragment parsed (a copy: the caller types and translates it); the same text is parsed once, so a step
    compiled again with the types of what it reads only translates its fragments again."""
    key = (rendered, dialect)
    known = _PARSED.get(key)
    if known is None:
        if len(_PARSED) >= _FRAGMENTS_KEPT:
            _PARSED.pop(next(iter(_PARSED)))
        known = _PARSED[key] = parse_expression(rendered, dialect, where)
    return known.copy()


def _signature(columns: dict[str, exp.DataType] | None) -> str:
    """A fragment cache key's part for the types it was translated with (computed once per mapping)."""
    if columns is None:
        return ""
    known = _SIGNATURES.get(id(columns))
    if known is None or known[0] is not columns:
        known = (columns, ";".join(f"{n}:{t.sql()}" for n, t in sorted(columns.items())))
        _SIGNATURES[id(columns)] = known
    return known[1]


@dataclass
class CompileContext:
    project: Project
    plan: RunPlan
    dialect: str  # the engine's
    source_dialect: str  # the dialect the project's SQL is written in
    materials: Mapping[StepKey, exp.Table]
    end_time: datetime
    begin_time: datetime | None = None
    file_tables: Mapping[str, exp.Table] = field(default_factory=dict)  # `csv:`/`s3:` inputs loaded by the run
    input_schema: str | None = None  # the connection's schema, where an unqualified input table name is
    reuse_fragments: bool = True  # False: every fragment is parsed and translated anew (the census counts them)
    # each step's previous complete material of the same definition (incremental runs); empty: all in full
    increments: Increments = field(default_factory=Increments)
    # the engine's column types of the tables steps read (materials, inputs), by table name (transpile/types.py):
    # filled by whoever runs the SQL as the tables come to exist; some of the source dialect's casts depend on them
    column_types: dict[str, dict[str, exp.DataType]] = field(default_factory=dict)
    # the same tables' column names as the engine spells them, where the engine cannot select "every column but"
    # (`EngineTraits.all_columns_but`): a source's own column named like the main id is left out by name
    column_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    types_missed: bool = False  # set when a fragment read a table whose types were not known
    variant_vars: set[str] = field(default_factory=set)  # vars whose value is a VARIANT (JSON on the engine)
    _rendered_texts: dict[str, str] = field(default_factory=dict, repr=False)
    _model_rows: dict[tuple[str, str], exp.Subquery] = field(default_factory=dict, repr=False)

    def sql(self, node: exp.Expr) -> str:
        return node.sql(dialect=self.dialect, pretty=True)

    def at_grain(self, grain: str) -> CompileContext:
        """The context a step of a coarser `grain` compiles in (pb's var_group time_grain): the end time is
        that grain's last boundary, every step it reads is that grain's copy (the planner's `at_grain`), and
        nothing is extended from an earlier material: grain steps are built in full."""
        return replace(
            self,
            end_time=boundary(self.end_time, grain),
            materials=_AtGrain(self.materials, grain),
            increments=Increments(),
            _rendered_texts={},
            _model_rows={},
        )

    def input_table(self, name: str) -> exp.Table:
        """The input's table or view; a `csv:` file (or `s3:` object) is read in place where the engine can."""
        inp = self.project.inputs[name]
        defaults = inp.spec.app_defaults
        if defaults.csv is None and defaults.s3 is None:
            return input_table(defaults.source, self.source_dialect, self.input_schema, self.dialect)
        if name in self.file_tables:  # the run loaded it into a table (profiles_dagster/warehouse/files.py)
            return self.file_tables[name].copy()
        key = "csv" if defaults.csv is not None else "s3"
        if not traits_of(self.dialect).reads_csv_in_place:  # outside a run: the table run 0 would load it into
            return table(file_table_name(name, 0), next((t.db for t in self.materials.values()), None))
        location = str(csv_path(self.project, name)) if key == "csv" else str(defaults.s3)
        return exp.Table(this=exp.ReadCSV(this=exp.Literal.string(location), expressions=[]))

    def filter_source(self, ref: str) -> exp.Table:
        """The table an id_type `sql` filter reads: an input or a sql model."""
        kind, _, name = ref.partition("/")
        if kind == "models":
            return self.materials[StepKey.sql_model(name)].copy()
        return self.input_table(name)

    def rows_read(self, name: str) -> exp.Expr | None:
        """The condition on an input's rows every step reads: its time window and its `where:` (pb drops the
        rows that fail `where` from the input itself, so they are neither stitched nor counted)."""
        inp = self.project.inputs[name]
        window = self.time_window(name)
        if inp.spec.where is None:
            return window
        kept = self.fragment(inp.spec.where, Where(inp.origin.at("where"), f"{name}.where"), self.input_table(name))
        return exp.and_(exp.paren(kept), window) if window is not None else kept

    def time_window(self, name: str) -> exp.Expr | None:
        """pb reads an input's rows with occurred_at up to the run's end time (inclusive, NULL kept),
        and from its begin time when one is given."""
        occurred = self.project.inputs[name].occurred_at_col
        if not occurred:
            return None
        when = exp.cast(col(occurred), exp.DataType.build("timestamp"))
        within: exp.Expr = when.copy() <= self.time_literal(self.end_time)
        if self.begin_time is not None:
            within = exp.and_(within, when.copy() >= self.time_literal(self.begin_time))
        return exp.or_(col(occurred).is_(exp.null()), exp.paren(within))

    def time_literal(self, value: datetime | None) -> exp.Expr:
        if value is None:
            return exp.null()
        return timestamp_literal(value.replace(microsecond=0))  # pb's times are whole seconds

    def template_context(self, deref: Callable[[str], str] | None = None, this_name: str = "") -> TemplateContext:
        project = self.project
        return TemplateContext(
            entities=tuple(project.entities),
            resolve_var=lambda entity, name: var_placeholder(name),
            sources=tuple(name for name in (*project.inputs, *project.sql_models) if name not in project.entities),
            cohorts=cohort_entities(project),
            deref=deref or (lambda path: path),
            this_name=this_name,
            database_type=self.source_dialect,  # pb's answer on the warehouse the SQL is written for
            values={
                "end_time_sql": self.time_literal(self.end_time).sql(self.source_dialect),
                "begin_time_sql": self.time_literal(self.begin_time).sql(self.source_dialect),
                "end_time": GoTime(self.end_time),
                "begin_time": GoTime(self.begin_time) if self.begin_time else None,
            },
            macros=project_macros(project),
        )

    def rendered(self, text: str, where: Where) -> str:
        """A user's SQL text with its template rendered (var references become placeholders)."""
        if "{{" not in text and "{%" not in text:  # most fragments are plain SQL: no template context to build
            return text
        known = self._rendered_texts.get(text)  # one context renders a text the same way each time
        if known is not None:
            return known
        self._rendered_texts[text] = done = render(
            text,
            self.template_context(),
            file=where.origin.file if where.origin else None,
            line=where.origin.line if where.origin else None,
            key=where.what,
        )
        return done

    def types_of(self, reads: exp.Expr | None) -> dict[str, exp.DataType] | None:
        """The column types of the table a fragment reads, None when not known."""
        if not isinstance(reads, exp.Table):
            return None
        return self.column_types.get(types.table_key(reads))

    def fragment(self, text: str, where: Where, reads: exp.Expr | None = None) -> exp.Expr:
        """A user's SQL fragment, rendered, parsed in the project's dialect and checked to transpile. The
        same rendered text (over a table of the same column types) gives the same tree (a copy of one made
        earlier: validate compiles a step more than once, and var fragments repeat across var tables).
        `reads`: the table whose rows the fragment is computed over, whose column types some casts depend on."""
        rendered = self.rendered(text, where)
        columns = self.types_of(reads)
        variants = (
            sorted(n for n in _VAR_REFS.findall(rendered) if n in self.variant_vars) if VAR_PREFIX in rendered else []
        )
        vars_part = "|" + ",".join(variants)
        key = (rendered, str(self.source_dialect), str(self.dialect), _signature(columns) + vars_part)
        known = _FRAGMENTS.get(key) if self.reuse_fragments else None
        if known is None and columns is not None and self.reuse_fragments:
            # translated before without types, no rule asking a column's type: the types change nothing
            before = _FRAGMENTS.get((key[0], key[1], key[2], vars_part))
            known = before if before is not None and not before[1] else None
        untyped = columns is None and isinstance(reads, exp.Table)  # its table's types may come later
        if known is not None:
            self.types_missed |= untyped and known[1]
            return known[0].copy()
        parsed = _parsed(rendered, self.source_dialect, where)
        if columns is not None:
            types.attach_columns(parsed, columns)
        if variants:  # a var holding a VARIANT is one where another var reads it (`{{ user.Var("v") }}::string`)
            types.attach_vars(parsed, {var_placeholder(n) for n in variants})
        types.reset_asked()
        parsed = self.translated(parsed, where)
        asked = types.was_asked()  # a rule asked a column's type: its answer may change with the types
        self.types_missed |= untyped and asked
        if self.dialect != self.source_dialect:
            try:
                parsed.sql(dialect=self.dialect, unsupported_level=ErrorLevel.RAISE)
            except UnsupportedError as exc:
                raise where.error(
                    f"`{rendered.strip()}` ({self.source_dialect}) cannot be written for {self.dialect}: {exc}"
                ) from None
        if len(_FRAGMENTS) >= _FRAGMENTS_KEPT:
            _FRAGMENTS.pop(next(iter(_FRAGMENTS)))
        _FRAGMENTS[key] = (parsed.copy(), asked)
        return parsed

    def with_types(self, tree: exp.Expr) -> exp.Expr:
        """A query's columns typed from the tables it reads, where their types are known."""
        return types.attach_schema(tree, self.column_types) if self.column_types else tree

    def translated_query(self, tree: exp.Expr, where: Where) -> exp.Expr:
        """A sql model's query or statement, its columns typed, translated; `types_missed` noted when it reads
        a table whose types are not known and a rule asked the type of a column."""
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        read = {t.name.lower() for t in tree.find_all(exp.Table) if t.name} - ctes
        types.reset_asked()
        out = self.translated(self.with_types(tree), where)
        self.types_missed |= types.was_asked() and any(name not in self.column_types for name in read)
        return out

    def translated(self, tree: exp.Expr, where: Where) -> exp.Expr:
        """User SQL parsed in the project's dialect, rewritten to mean the same on the engine (or refused)."""
        try:
            return translate(tree, self.source_dialect, self.dialect)
        except UnfaithfulError as exc:
            raise where.error(
                f"{exc.construct} ({self.source_dialect}) has no faithful form on {self.dialect}: {exc.reason}"
            ) from None


class _AtGrain(Mapping[StepKey, exp.Table]):
    """The materials as a step of a coarser grain reads them: a step's key finds that grain's copy of it.
    The payloads of grain steps keep the default grain's keys; every read goes through this mapping."""

    def __init__(self, materials: Mapping[StepKey, exp.Table], grain: str) -> None:
        self.materials = materials
        self.grain = grain

    def __getitem__(self, key: StepKey) -> exp.Table:
        at = key.at(self.grain) if key.grain is None else key  # a key of its own grain (a model's) stays
        return self.materials[at] if at in self.materials else self.materials[key]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, StepKey):
            return False
        return (key.grain is None and key.at(self.grain) in self.materials) or key in self.materials

    def __iter__(self) -> Iterator[StepKey]:
        return iter(self.materials)

    def __len__(self) -> int:
        return len(self.materials)


@dataclass
class StepProgram:
    """What a step runs: statements that create `target`, or for the id stitcher the observations."""

    step: Step
    target: exp.Table
    statements: list[exp.Expr] = field(default_factory=list)
    observations: exp.Query | None = None  # id stitcher input

    @property
    def nodes(self) -> list[exp.Expr]:
        """The trees the step sends: its observations (id stitcher) or its statements."""
        return [self.observations] if self.observations is not None else self.statements

    def sql(self, dialect: str) -> str:
        """The step's SQL as it runs, for compile output and metadata."""
        if self.observations is not None:
            return (
                f"-- id stitcher: connected components over these observations, written to "
                f"{self.target.sql(dialect)}\n{self.observations.sql(dialect, pretty=True)};"
            )
        return "\n\n".join(st.sql(dialect, pretty=True) + ";" for st in self.statements)


def compile_step(step: Step, ctx: CompileContext) -> StepProgram:
    if step.grain is not None:  # computed as of a coarser grain's boundary, from that grain's steps
        at = ctx.at_grain(step.grain)
        try:
            return replace(compile_step(replace(step, key=step.key.base), at), step=step)
        finally:
            ctx.types_missed = ctx.types_missed or at.types_missed
    target = ctx.materials[step.key]
    result = _BUILDERS[step.kind](step, ctx)
    if isinstance(result, list):  # multi_sql: the user's own statements
        return StepProgram(step, target, statements=result)
    if step.kind is StepKind.ID_STITCHER:
        return StepProgram(step, target, observations=result)
    kind = "VIEW" if step.kind is StepKind.SQL_MODEL and step.payload_as(SqlModel).output_type != "table" else "TABLE"
    return StepProgram(step, target, statements=[exp.Create(kind=kind, this=target.copy(), expression=result)])


# ---- helpers ------------------------------------------------------------------------------------


def _main(ctx: CompileContext, entity: str) -> str:
    return ctx.project.entities[entity].main_id_column


def _entity(step: Step) -> str:
    """The entity of a step that has one (every kind but a custom SQL model)."""
    if step.entity is None:
        raise TypeError(f"step {step.path} belongs to no entity")
    return step.entity


def _ids_of(ctx: CompileContext, ids: list[InputId], entity: str) -> list[tuple[InputId, exp.Expr]]:
    ent = ctx.project.entities[entity]
    # the input or sql model declaring an id, so an unparsable `select` names its file and line
    owners: tuple[Input | SqlModel, ...] = (*ctx.project.inputs.values(), *ctx.project.sql_models.values())
    origin = {id(i): o.origin for o in owners for i in o.ids}
    return [
        (i, filtered_id(i, ent.id_types[i.type], ctx.source_dialect, origin.get(id(i)), ctx.filter_source))
        for i in ids
        if i.entity == entity and i.type != RUDDER_ID  # the main id itself is no node of the graph
    ]


def _id_origin(ctx: CompileContext, id_: InputId) -> Origin | None:
    owners: tuple[Input | SqlModel, ...] = (*ctx.project.inputs.values(), *ctx.project.sql_models.values())
    return next((o.origin for o in owners for i in o.ids if i is id_), None)


def _attributed(ctx: CompileContext, source: exp.Table | exp.Subquery, ids: list[InputId], entity: str) -> exp.Select:
    """The source's rows with the main id of any of their ids (all of one row's ids share a cluster)."""
    main = _main(ctx, entity)
    query = exp.select(exp.column(exp.Star(), table="src"))
    rudder = next((i for i in ids if i.entity == entity and i.type == RUDDER_ID), None)
    if rudder is not None:  # pb: the rows' main id is that column (`ON <select> = <main id>`), no graph lookup
        where = Where(_id_origin(ctx, rudder), f"ids: {rudder.select}")
        value = qualify(ctx.fragment(rendered_select(rudder.select, ctx.source_dialect, where), where), "src")
        return query.select(exp.alias_(value, main), copy=False).from_(
            source.as_("src") if isinstance(source, exp.Table) else source, copy=False
        )
    stitcher = ctx.materials[StepKey.id_stitcher(entity)]
    mains = []
    for n, (id_, expr) in enumerate(_ids_of(ctx, ids, entity)):
        alias = f"ids_{n}"
        on = exp.and_(
            col("other_id_type", alias).eq(exp.Literal.string(id_.type)),
            col("other_id", alias).eq(qualify(_graph_key(ctx, id_, expr, entity), "src")),
        )
        query = query.join(stitcher.copy().as_(alias), on=on, join_type="left", copy=False)  # ours: no copying
        mains.append(col(main, alias))
    main_expr = mains[0] if len(mains) == 1 else exp.func("coalesce", *mains)
    # the source's own column of the main id's name (an id may read it) gives way to the stitched one, as pb
    # drops it; where the engine cannot say "every column but", the two names collide and it reports that
    replaced = traits_of(ctx.dialect).all_columns_but
    if not replaced:
        query = _without_own_main_id(ctx, query, source, main)
    query = query.select(exp.alias_(main_expr, _STITCHED if replaced else main), copy=False).from_(
        source.as_("src") if isinstance(source, exp.Table) else source, copy=False
    )
    return _stitched_in_place(query, main) if replaced else query


def _without_own_main_id(
    ctx: CompileContext, query: exp.Select, source: exp.Table | exp.Subquery, main: str
) -> exp.Select:
    """`src.*` spelled out without the source's own column named like the main id, where it has one, for
    engines that cannot say "every column but" (the stitched main id takes that name, as pb puts it there).
    Its column names are the ones the engine gave when the table came to exist; unknown, `src.*` stays and a
    source with such a column fails loudly on its duplicate name."""
    names = ctx.column_names.get(types.table_key(source)) if isinstance(source, exp.Table) else None
    if names is None:
        ctx.types_missed |= isinstance(source, exp.Table)  # compiled again once the table's columns are known
        return query
    if main.lower() not in (n.lower() for n in names):
        return query
    kept = [exp.column(exp.to_identifier(n, quoted=True), table="src") for n in names if n.lower() != main.lower()]
    query.set("expressions", kept)  # in place of `src.*`, the joins kept
    return query


_STITCHED = "__pd_stitched_main_id"


def _stitched_in_place(query: exp.Select, main: str) -> exp.Select:
    """Every column of `query` but the source's own `main` (whether or not it has one) and the stitched main id
    under its internal name, then the stitched one as `main`: pb 0.26.4 looks ids up on the source's columns,
    then drops its column named like the main id and puts the stitched main id in its place."""
    dropped = exp.Tuple(expressions=[exp.Literal.string(main.lower()), exp.Literal.string(_STITCHED)])
    keep = exp.Lambda(
        this=exp.not_(exp.In(this=exp.func("lower", exp.column("c")), expressions=dropped.expressions)),
        expressions=[exp.to_identifier("c")],
    )
    return exp.select(exp.Anonymous(this="COLUMNS", expressions=[keep]), exp.alias_(col(_STITCHED), main)).from_(
        query.subquery("attributed"), copy=False
    )


def _grain_model_rows(ctx: CompileContext, entity: str, name: str) -> StepKey | None:
    """The step holding a coarser-grain sql model's rows with the main ids of that grain's graph (the planner's
    `grain_model_rows`), None for anything else."""
    model = ctx.project.sql_models.get(name)
    if model is None or model.time_grain is None:
        return None
    return StepKey.input_vars_mapped(entity, name).at(model.time_grain)


def _source_table(ctx: CompileContext, entity: str, ref: str) -> exp.Table | None:
    """The table whose columns a var `from: ref` reads (as `_source_rows` reads it)."""
    kind, _, name = ref.partition("/")
    grained = _grain_model_rows(ctx, entity, name)
    if grained is not None:
        return ctx.materials[grained]
    if kind == "inputs" or StepKey.input_vars_mapped(entity, name) in ctx.materials:
        return ctx.materials[StepKey.input_vars_mapped(entity, name)]
    if name in ctx.project.sql_models:
        return ctx.materials[StepKey.sql_model(name)]
    return None


def _source_rows(ctx: CompileContext, entity: str, ref: str) -> exp.Expr:
    """Rows of `inputs/x` or `models/x` with the entity's main id column."""
    kind, _, name = ref.partition("/")
    grained = _grain_model_rows(ctx, entity, name)
    if grained is not None:  # a sql model of a coarser grain: its rows keyed by that grain's id graph
        return ctx.materials[grained].copy()
    if kind == "inputs" or StepKey.input_vars_mapped(entity, name) in ctx.materials:  # with its input vars
        return ctx.materials[StepKey.input_vars_mapped(entity, name)].copy()
    if name in ctx.project.sql_models:
        # the same for every var reading the model: built once per context (its ids' SQL parsed once)
        known = ctx._model_rows.get((entity, name))
        if known is None:
            model = ctx.project.sql_models[name]
            rows = _attributed(ctx, ctx.materials[StepKey.sql_model(name)].copy(), model.ids, entity).subquery()
            known = ctx._model_rows[(entity, name)] = rows
        return known.copy()
    return ctx.materials[StepKey.id_stitcher(entity)].copy()


# ---- steps --------------------------------------------------------------------------------------


def _input_vars(step: Step, ctx: CompileContext) -> exp.Query:
    """The input's rows in the run's time window, numbered. Where the engine numbers rows in scan order
    (an empty OVER ()), as pb does, without sorting: the rows stay in the input's order and no sort of the
    whole input (all its columns) is paid; elsewhere ROW_NUMBER() needs an order, occurred_at's."""
    inp = step.payload_as(Input)
    occurred = inp.occurred_at_col
    ordered = occurred and not traits_of(ctx.dialect).scan_order_numbering
    order = exp.Order(expressions=[exp.Ordered(this=col(occurred))]) if ordered and occurred else None
    row_id = exp.Window(this=exp.RowNumber(), order=order)
    query = exp.select(exp.alias_(row_id, INPUT_ROW_ID), exp.Star()).from_(ctx.input_table(inp.name))
    window = ctx.rows_read(inp.name)
    return query.where(window) if window is not None else query


def _observations(step: Step, ctx: CompileContext) -> exp.Query:
    """The stitcher's input: one row per row of every edge source, its ids in slots (``other_id_type_<k>,
    other_id_<k>``, NULL where the id is NULL or filtered out, and past the source's own ids) and its
    occurred_at. A row's ids are linked; the stitcher reads each row once and looks each id up once."""
    entity = _entity(step)
    stitcher = step.payload_as(IdStitcher)
    if stitcher.borrowed_from is not None:
        return _lent_graph(ctx, stitcher.borrowed_from)
    sources = [(ref, _ids_of(ctx, ctx.project.source_ids(ref, entity), entity)) for ref in stitcher.edge_sources]
    sources = [(ref, declared) for ref, declared in sources if declared]
    if not sources:
        raise ProfilesError(f"id stitcher of '{entity}' has no edge sources with ids")
    # a slot per (id type, its n-th id of that type on a row): each slot holds one type, so the stitcher looks
    # its ids up by value among that type's ids alone
    keys: dict[tuple[str, int], int] = {}
    placed: list[dict[int, tuple[InputId, exp.Expr]]] = []
    for _, declared in sources:
        nth: dict[str, int] = {}
        slot_of: dict[int, tuple[InputId, exp.Expr]] = {}
        for id_, expr in declared:
            nth[id_.type] = nth.get(id_.type, 0) + 1
            slot_of[keys.setdefault((id_.type, nth[id_.type]), len(keys) + 1)] = (id_, expr)
        placed.append(slot_of)
    slots = len(keys)
    parts: list[exp.Query] = []
    for (ref, _), slot_of in zip(sources, placed, strict=True):
        kind, _, name = ref.partition("/")
        occurred = ctx.project.occurred_at_col(ref)
        table = ctx.materials[StepKey.input_vars(entity, name) if kind == "inputs" else StepKey.sql_model(name)].copy()
        occurred_expr = (
            exp.cast(col(occurred), exp.DataType.build("timestamp"))
            if occurred
            else exp.cast(exp.null(), exp.DataType.build("timestamp"))
        )
        columns: list[exp.Expr] = [exp.alias_(occurred_expr, "occurred_at")]
        for k in range(1, slots + 1):
            if k in slot_of:
                id_, expr = slot_of[k]
                id_type: exp.Expr = exp.cast(exp.Literal.string(id_.type), "VARCHAR")  # pb: varchar
                value = expr
            else:
                id_type, value = exp.cast(exp.null(), "VARCHAR"), exp.null()
            columns += [exp.alias_(id_type, f"other_id_type_{k}"), exp.alias_(value, f"other_id_{k}")]
        parts.append(exp.select(*columns).from_(table))
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False, copy=False)  # parts are ours: no quadratic copying
    return union


def _lent_graph(ctx: CompileContext, lender: str) -> exp.Query:
    """Another entity's id graph as observations: each id on a row with its cluster's least id (by type and
    id), each slot seen at its own id's first_seen_at; stitching them gives the same clusters, times and, by
    pb's rule, the same main ids."""
    main = col(_main(ctx, lender))
    order = exp.Order(expressions=[exp.Ordered(this=col("other_id_type")), exp.Ordered(this=col("other_id"))])

    def first(column: str) -> exp.Expr:
        return exp.Window(this=exp.func("first_value", col(column)), partition_by=[main.copy()], order=order.copy())

    seen = exp.cast(col("first_seen_at"), exp.DataType.build("timestamp"))
    members = exp.select(
        exp.alias_(seen, "occurred_at_1"),
        exp.alias_(col("other_id_type"), "other_id_type_1"),
        exp.alias_(col("other_id"), "other_id_1"),
        exp.alias_(first("first_seen_at"), "first_seen_2"),
        exp.alias_(first("other_id_type"), "other_id_type_2"),
        exp.alias_(first("other_id"), "other_id_2"),
    ).from_(ctx.materials[StepKey.id_stitcher(lender)].copy())
    return exp.select(
        "occurred_at_1",
        "other_id_type_1",
        "other_id_1",
        exp.alias_(exp.cast(col("first_seen_2"), exp.DataType.build("timestamp")), "occurred_at_2"),
        "other_id_type_2",
        "other_id_2",
    ).from_(members.subquery("m"))


def _split_filtered(expr: exp.Expr) -> tuple[exp.Expr, exp.Expr] | None:
    """(value, dropped) of `CASE WHEN dropped THEN NULL ELSE value END`, the shape of `ids.filtered_id`."""
    if not isinstance(expr, exp.Case) or expr.this is not None or expr.args.get("default") is None:
        return None
    ifs = expr.args.get("ifs") or []
    if len(ifs) != 1 or not isinstance(ifs[0].args.get("true"), exp.Null):
        return None
    return expr.args["default"], ifs[0].this


def _graph_key(ctx: CompileContext, id_: InputId, expr: exp.Expr, entity: str) -> exp.Expr:
    """An id as a join into the id graph reads it. Every node of the graph passed its id type's filters,
    so an id filtered by values and regexes finds (or misses) its node unfiltered, without running the
    filters again; `sql` filters read tables, which may change between steps: applied."""
    split = _split_filtered(expr)
    filters = ctx.project.entities[entity].id_types[id_.type].filters
    if split is None or any(f.sql is not None for f in filters):
        return expr
    return split[0]


def _all(step: Step, ctx: CompileContext) -> exp.Query:
    graph = step.payload_as(AllPayload).id_stitcher
    main = _main(ctx, _entity(step))
    return exp.select(col(main)).distinct().from_(ctx.materials[graph].copy())


def _mapped(step: Step, ctx: CompileContext) -> exp.Query:
    payload = step.payload_as(MappedPayload)
    entity = _entity(step)
    inp = payload.input
    query: exp.Query = _attributed(ctx, ctx.materials[payload.input_vars].copy(), inp.ids, entity)
    for n, pv in enumerate(payload.vars):
        value = _row_value(pv, ctx, main=_main(ctx, entity), reads=ctx.materials[payload.input_vars])
        value = bind_vars(value, lambda ref: col(ref))
        query = exp.select(exp.Star(), exp.alias_(value, pv.var.name)).from_(
            query.subquery(f"iv_{n}", copy=False), copy=False
        )
    return query


def _row_value(
    pv: PlannedVar, ctx: CompileContext, main: str | None = None, reads: exp.Table | None = None
) -> exp.Expr:
    """A var computed row by row over the rows it reads (an input var over its input's rows, a var without
    `from` over the entity var table's): its select, windowed over the rows passing `where` if it has a
    window, NULL where `where` does not hold, then its default. Var references stay placeholders.

    With `main` (an input var: its rows carry the entity's main id column), pb computes the var only over the
    rows that have a main id (`WHERE <main> IS NOT NULL AND <where>`; the others keep NULL), and a
    `window.partition_by` entry written `rudder_id` means that main id column (pb 0.26.4 writes it so)."""
    spec = pv.var.spec
    where = Where(pv.var.origin, pv.var.name)
    value = ctx.fragment(spec.select, where, reads)
    if holds_variant(value):
        ctx.variant_vars.add(pv.var.name)
    cond = ctx.fragment(spec.where, where, reads) if spec.where else None
    if not spec.window and (found := _bare(value, _aggregate)) is not None:
        rows = "its input's rows, one value per row" if main is not None else "the entity var table, one per main id"
        kind = pv.var.kind.replace("_", " ")
        raise pv.var.origin.at("select").error(
            f"`{_function_name(found)}(...)` aggregates, but pb computes {kind} '{pv.var.name}' "
            f"row by row over {rows}, with no GROUP BY: the warehouse rejects pb's SQL for it "
            "(pb 0.26.4 on Postgres: 'must appear in the GROUP BY clause'), so it has no meaning to keep",
            hint="a var without `from` reads one row per main id: write the value itself (`x` for `any_value(x)`)"
            if main is None
            else "add `window:` to aggregate over a partition, or aggregate in an entity var",
        )
    if main is not None:
        attributed = col(main).is_(exp.null()).not_()
        cond = attributed if cond is None else exp.and_(attributed, exp.paren(cond))
    if spec.window:
        # the rows failing `where` form partitions of their own, so a rank counts only the rows that pass
        partition = [
            col(main) if main is not None and p == RUDDER_ID else ctx.fragment(p, where, reads)
            for p in spec.window.partition_by
        ]
        if cond is not None:
            partition.insert(0, exp.paren(cond.copy()))
        value = _windowed(value, partition, spec.window, ctx, where)
    if cond is not None:
        value = exp.Case(ifs=[exp.If(this=cond, true=value)])
    if spec.default_value is not None:
        value = exp.func("coalesce", value, literal_for(spec.default_value))
    return value


def _window_shell(window: Window, ctx: CompileContext, where: Where) -> exp.Window:
    """pb's `window:` order_by and frame_clause as an empty window `f() OVER (...)`, its order translated."""
    order = ", ".join(ctx.rendered(o, where) for o in window.order_by)
    frame = ctx.rendered(window.frame_clause, where) if window.frame_clause else ""
    text = "f() OVER (" + (f"ORDER BY {order} " if order else "") + frame + ")"
    shell = parse_expression(text, ctx.source_dialect, where)
    if not isinstance(shell, exp.Window):
        raise where.error("window order_by/frame_clause do not form a window clause")
    if shell.args.get("order") is not None:  # the order_by is user SQL too: translated like the select
        shell.set("order", ctx.translated(shell.args["order"], where))
    return shell


def _windowed(
    value: exp.Expr, partition: list[exp.Expr], window: Window, ctx: CompileContext, where: Where
) -> exp.Expr:
    """Attach pb's `window:` (partition_by, order_by, frame_clause) to a var's select."""
    shell = _window_shell(window, ctx, where)
    shell.set("partition_by", partition or None)
    if value.meta.get("pd_window_inside"):  # a translation wrapped the aggregate (transpile/semistructured.py)
        targets = [n for n in value.walk() if n.meta.get("pd_window_target")]  # marked by the rule (Postgres)
        inner = value.find_all(exp.WithinGroup, exp.ArrayAgg)
        agg = targets[0] if targets else next(n for n in inner if not isinstance(n.parent, exp.WithinGroup))
        if agg.meta.get("pd_default_frame"):  # the translated function's own default frame (FIRST_VALUE's)
            whole_partition_by_default(shell)
        agg.replace(shell)
        shell.set("this", agg)
        return value
    function = value.this if isinstance(value, exp.IgnoreNulls) else value
    if ctx.source_dialect == "snowflake" and isinstance(function, exp.FirstValue | exp.LastValue | exp.NthValue):
        whole_partition_by_default(shell)
    shell.set("this", value)
    return shell


def _var_table(step: Step, ctx: CompileContext) -> exp.Query:
    payload = step.payload_as(VarTablePayload)
    entity = payload.entity
    main = _main(ctx, entity)
    query = exp.select(col(main, "base")).from_(ctx.materials[payload.base].copy().as_("base"))
    if payload.inherit_from:
        query = query.select(*(col(name, "ev") for name in payload.inherited), copy=False)
        query = query.join(
            ctx.materials[payload.inherit_from].copy().as_("ev"),
            on=col(main, "base").eq(col(main, "ev")),
            join_type="left",
            copy=False,
        )
    for n, (key, names) in enumerate(payload.coarser):  # a cohort's: the entity's coarser grains' features
        alias = f"g{n}"
        query = query.select(*(col(name, alias) for name in names), copy=False)
        query = query.join(
            ctx.materials[key].copy().as_(alias),
            on=col(main, "base").eq(col(main, alias)),
            join_type="left",
            copy=False,
        )
    # vars read from a source without referring to other vars share one aggregate pass per source;
    # the rest follow in dependency order, each a layer over what is computed so far.
    # `query` is ours alone: build it in place (copy=False), or hundreds of vars copy the tree quadratically
    # pb's `merge:` vars (sql/merges.py): their clauses are checked on every compile; merged when there is a
    # baseline, else computed over all rows with the others
    clauses = {pv.var.name: merges.merge_clauses(ctx, pv) for pv in payload.vars if merges.merges(pv)}
    baseline = _merge_baseline(ctx, step, entity) if clauses else None
    merging = [pv for pv in payload.vars if pv.var.name in clauses] if baseline is not None else []
    batched = [pv for pv in payload.vars if pv.var.spec.from_ and not pv.refs and pv not in merging]
    ctes: list[exp.CTE] = []
    subs = [(f"agg_{n}", columns, sub) for n, (columns, sub) in enumerate(_aggregations(ctx, entity, batched))]
    if merging and baseline is not None:
        merge_ctes, merged = _merged(ctx, entity, merging, baseline, clauses)
        ctes.extend(merge_ctes)
        subs.extend((f"merged_{n}", [pv], sub) for n, (pv, sub) in enumerate(merged))
    for alias, columns, sub in subs:
        on = col(main, "base").eq(col(main, alias))
        query = query.join(sub.subquery(alias, copy=False), on=on, join_type="left", copy=False)
        query = query.select(
            *(exp.alias_(_with_default(col(pv.var.name, alias), pv), pv.var.name) for pv in columns), copy=False
        )
    for n, pv in enumerate(pv for pv in payload.vars if not (pv.var.spec.from_ and not pv.refs)):
        if not pv.var.spec.from_:  # over the var table's rows, one per main id, as pb computes it
            value = bind_vars(_row_value(pv, ctx), lambda r: col(r))
            query = exp.select(exp.Star(), exp.alias_(value, pv.var.name)).from_(
                query.subquery(f"layer_{n}", copy=False), copy=False
            )
            continue
        # a sourced var that reads other vars: its rows carry those vars under their placeholder names.
        # The vars so far are read twice (for those rows, and to carry every column on): named once as a
        # CTE and referred to by name, or each such var would copy the query built so far twice
        so_far = f"vars_{len(ctes)}"
        ctes.append(exp.CTE(this=query, alias=exp.TableAlias(this=ident(so_far))))
        rows = (
            exp.select(
                exp.column(exp.Star(), table="src"),
                *(exp.alias_(col(ref, "cur"), var_placeholder(ref)) for ref in pv.refs),
            )
            .from_(_source_rows(ctx, entity, pv.var.spec.from_).as_("src"))
            .join(exp.Table(this=ident(so_far)).as_("cur"), on=col(main, "src").eq(col(main, "cur")))
        )
        ((columns, sub),) = _aggregations(ctx, entity, [pv], source=rows.subquery("rows"))
        query = (
            exp.select(
                exp.column(exp.Star(), table="prev"), exp.alias_(_with_default(col(pv.var.name, "a"), pv), pv.var.name)
            )
            .from_(exp.Table(this=ident(so_far)).as_("prev"), copy=False)
            .join(sub.subquery("a", copy=False), on=col(main, "prev").eq(col(main, "a")), join_type="left", copy=False)
        )
    own = {pv.var.name: pv for pv in payload.vars}
    final = [
        col(main),
        *(col(n) for n in payload.inherited),
        *(col(n) for _, names in payload.coarser for n in names),
        *(_typed(col(n), own[n], ctx) for n in payload.declared),
    ]
    result = exp.select(*final).from_(query.subquery("vars", copy=False), copy=False)
    if ctes:
        result.set("with_", exp.With(expressions=ctes))
    return result


def _merge_baseline(ctx: CompileContext, step: Step, entity: str) -> merges.Baseline | None:
    """The run a `merge:` var table extends: its previous complete material of the same definition and the id
    graph of that same run. None (compute in full, as pb's first run does): no such run, a full refresh, or
    that run's graph is gone."""
    graph_key = StepKey.id_stitcher(entity)
    table, graph = ctx.increments.of(step.key), ctx.increments.of(graph_key)
    if table is None or graph is None or graph_key not in ctx.materials:
        return None
    if table.seq_no != graph.seq_no or table.end_time is None:
        return None
    return merges.Baseline(table.table, graph.table, table.end_time)


def _merged(
    ctx: CompileContext,
    entity: str,
    merging: list[PlannedVar],
    baseline: merges.Baseline,
    clauses: dict[str, tuple[exp.Expr, exp.Expr | None]],
) -> tuple[list[exp.CTE], list[tuple[PlannedVar, exp.Select]]]:
    """`merge:` vars on a run with a baseline: their own aggregates over each source's new rows (one pass per
    source, as for the other vars), merged by pb's rule with the baseline's values (sql/merges.py)."""
    by_source: dict[str, list[PlannedVar]] = {}
    for pv in merging:
        by_source.setdefault(pv.var.spec.from_ or "", []).append(pv)
    news: list[tuple[list[PlannedVar], exp.Query]] = []
    for source, pvs in by_source.items():
        occurred = ctx.project.occurred_at_col(source) or ""  # the loader requires one
        since = ctx.time_literal(baseline.end_time)
        rows = merges.new_rows(_source_rows(ctx, entity, source), occurred, since)
        news.extend(_aggregations(ctx, entity, pvs, source=rows))
    graph = ctx.materials[StepKey.id_stitcher(entity)]
    return merges.merged_vars(_main(ctx, entity), news, baseline, graph, clauses)


def _with_default(value: exp.Expr, pv: PlannedVar) -> exp.Expr:
    default = pv.var.spec.default_value
    return value if default is None else exp.func("coalesce", value, literal_for(default))


def _typed(value: exp.Expr, pv: PlannedVar, ctx: CompileContext) -> exp.Expr:
    """`column_data_type` casts the var's column, as pb does."""
    type_name = pv.var.spec.column_data_type
    if not type_name:
        return value
    if "{{" in type_name:  # `{{ warehouse.DataType("float") }}`, as pb allows
        at = pv.var.origin.at("column_data_type")
        type_name = render(type_name, ctx.template_context(), file=at.file, line=at.line, key=at.key).strip()
    try:
        data_type = exp.DataType.build(type_name, dialect=ctx.source_dialect)
    except Exception as exc:  # sqlglot raises several error types for unknown types
        raise Where(pv.var.origin, pv.var.name).error(f"unknown column_data_type '{type_name}': {exc}") from None
    return exp.alias_(exp.cast(value, data_type), pv.var.name)


def _aggregations(
    ctx: CompileContext, entity: str, sourced: list[PlannedVar], source: exp.Expr | None = None
) -> Iterator[tuple[list[PlannedVar], exp.Select]]:
    """Group vars by source: one aggregate pass per input for plain aggregates, one per window var.

    With `source` (rows carrying the vars a var reads, constant per entity) those columns are
    grouped by too, so the var's select can use them outside its aggregates."""
    main = _main(ctx, entity)
    keys = [col(main), *(col(var_placeholder(ref)) for pv in sourced for ref in pv.refs if source is not None)]
    shared: dict[str, list[tuple[PlannedVar, exp.Expr]]] = {}
    for pv in sourced:
        spec = pv.var.spec
        where = Where(pv.var.origin, pv.var.name)
        if spec.from_ is None:  # callers pass only vars read from an input or model
            raise where.error("a var aggregated per source needs `from`")
        reads = _source_table(ctx, entity, spec.from_)
        value = ctx.fragment(spec.select, where, reads)
        if holds_variant(value):
            ctx.variant_vars.add(pv.var.name)
        if not spec.window and (found := _bare(value, _window_only)) is not None:
            raise pv.var.origin.at("select").error(
                f"`{_function_name(found)}(...)` is a window function, and entity var '{spec.name}' has `from:` and "
                "no `window:`: pb writes it as an aggregate per main id without OVER, which the warehouse rejects "
                "(Snowflake and Postgres require OVER for it), so it has no meaning to keep",
                hint="add `window: order_by: [...]` (pb then takes it over each main id's rows in that order), "
                "or use an aggregate such as min/max/any_value",
            )
        cond = ctx.fragment(spec.where, where, reads) if spec.where else None
        rows = source.copy() if source is not None else _source_rows(ctx, entity, spec.from_)
        not_null = col(main).is_(exp.null()).not_()
        if spec.window and source is None and (ordered := _ordered_aggregate(value, spec.window, ctx, where)):
            # one value per main id that an ordered aggregate gives: a column of the source's shared pass
            shared.setdefault(spec.from_, []).append(
                (pv, ordered if cond is None else exp.Filter(this=ordered, expression=exp.Where(this=exp.paren(cond))))
            )
            continue
        if spec.window:
            partition = [col(main), *(ctx.fragment(p, where, reads) for p in spec.window.partition_by)]
            inner = exp.select(col(main), exp.alias_(_windowed(value, partition, spec.window, ctx, where), "v"))
            inner = inner.from_(rows).where(not_null if cond is None else exp.and_(not_null, exp.paren(cond)))
            picked = _same_on_every_row(value, spec.window, ctx)
            if picked is None and semistructured_postgres.holds_variant(value):  # jsonb: Postgres only
                raise pv.var.origin.at("select").error(
                    f"entity var '{spec.name}' holds a VARIANT and has `window:`: pb takes the MAX of its values over "
                    "each main id's rows, and Postgres has no MAX of jsonb (nor is Snowflake's order of VARIANT "
                    "objects documented), unless every row's value is the same",
                    hint="first_value(...) with `window: order_by` and no frame_clause or partition_by gives one "
                    "value per main id",
                )
            picked = picked or exp.Max(this=col("v"))
            sub = exp.select(col(main), exp.alias_(picked, spec.name)).from_(inner.subquery("w")).group_by(col(main))
            if len(keys) > 1:
                raise where.error("a window var cannot refer to other vars yet")
            yield [pv], sub
            continue
        if cond is not None:
            rewritten = _filter_aggregates(value, cond)
            if rewritten is None:  # an aggregate that does not skip NULLs: its own pass with WHERE
                sub = (
                    exp.select(col(main), exp.alias_(value, spec.name))
                    .from_(rows)
                    .where(exp.and_(not_null, exp.paren(cond)))
                    .group_by(*(k.copy() for k in keys))
                )
                yield [pv], sub
                continue
            value = rewritten
        shared.setdefault(spec.from_, []).append((pv, value))
    for ref, items in shared.items():
        rows = source.copy() if source is not None else _source_rows(ctx, entity, ref)
        sub = exp.select(col(main), *(exp.alias_(v, pv.var.name, copy=False) for pv, v in items)).from_(rows)
        sub = sub.where(col(main).is_(exp.null()).not_(), copy=False).group_by(*(k.copy() for k in keys), copy=False)
        yield [pv for pv, _ in items], sub


def _ordered_aggregate(value: exp.Expr, window: Window, ctx: CompileContext, where: Where) -> exp.Expr | None:
    """`first_value(x)` (or `last_value(x)` framed to the partition's end) over a main id's rows in the window's
    order, as the aggregate `FIRST(x ORDER BY ...)` (`LAST`) where the engine has it, or None.

    pb takes such a var as the MAX of the window's value over the main id's rows; the value is the same on
    every row (the first row's x, NULL included; the last row's when the frame reaches the partition's end),
    so the ordered aggregate (which keeps NULLs too) is the same value, without a window sort of the rows
    and as one more column of the source's aggregate pass. Not for extra `partition_by` columns (then the
    MAX is over several partitions), IGNORE NULLS, other frames, or a window without order."""
    if not traits_of(ctx.dialect).ordered_first_last or window.partition_by or not window.order_by:
        return None
    if not isinstance(value, exp.FirstValue | exp.LastValue) or value.meta.get("pd_window_inside"):
        return None
    shell = _window_shell(window, ctx, where)
    order, frame = shell.args.get("order"), shell.args.get("spec")
    if order is None:
        return None
    if frame is not None and frame.args.get("exclude"):
        return None
    bound = _frame_bound
    if isinstance(value, exp.FirstValue):  # a frame from the partition's start to the row or later: its first row
        if frame is not None and (
            bound(frame, "start") != "UNBOUNDED PRECEDING"
            or bound(frame, "end") not in ("", "CURRENT ROW", "UNBOUNDED FOLLOWING")
        ):
            return None
        aggregate: type[exp.AggFunc] = exp.First
    else:  # a frame from the row or earlier to the partition's end: its last row
        if frame is None:  # Snowflake's frame is then the whole partition (`frames.whole_partition_by_default`)
            if ctx.source_dialect != "snowflake":
                return None  # the engine's default frame ends at the row
        elif bound(frame, "end") != "UNBOUNDED FOLLOWING" or bound(frame, "start") not in (
            "UNBOUNDED PRECEDING",
            "CURRENT ROW",
        ):
            return None
        aggregate = exp.Last
    return aggregate(this=exp.Order(this=value.this.copy(), expressions=order.expressions))


def _same_on_every_row(value: exp.Expr, window: Window, ctx: CompileContext) -> exp.Expr | None:
    """pb's MAX of a window var's value over a main id's rows, where the engine has no MAX of its type (Postgres:
    no max(jsonb)) but the value is the same on every row: FIRST_VALUE over the main id's rows alone with pb's
    default frame (it starts at the partition's start: every row's first is the first row's), LAST_VALUE and
    NTH_VALUE in Snowflake SQL (framed to the whole partition, `frames.whole_partition_by_default`), or FIRST_VALUE
    IGNORE NULLS (framed so by its rewrite). Then any row's value is the MAX: the first, `(array_agg(v))[1]`.
    None: keep the MAX (elsewhere LAST_VALUE's default frame ends at the row: the values differ)."""
    if ctx.dialect != "postgres" or window.partition_by or window.frame_clause:
        return None
    if not semistructured_postgres.holds_variant(value):
        return None
    snowflake_frame = ctx.source_dialect == "snowflake" and isinstance(value, exp.LastValue | exp.NthValue)
    same = (
        isinstance(value, exp.FirstValue)
        or snowflake_frame
        or (
            value.meta.get("pd_window_inside")
            and any(n.meta.get(semistructured_postgres.DEFAULT_FRAME) for n in value.walk())
        )
    )
    if not same:
        return None
    values = exp.Anonymous(this="array_agg", expressions=[col("v")])
    return exp.Bracket(this=exp.paren(values, copy=False), expressions=[exp.Literal.number(1)], offset=1)


def _frame_bound(frame: exp.Expr, which: str) -> str:
    """A window frame's start or end as `UNBOUNDED PRECEDING`, `CURRENT ROW`, ... ('' when absent)."""
    value, side = frame.args.get(which), frame.args.get(f"{which}_side")
    if value is None:
        return ""
    text = value.upper() if isinstance(value, str) else value.sql().upper()
    return f"{text} {side.upper()}" if isinstance(side, str) and side else text


def _filter_aggregates(value: exp.Expr, cond: exp.Expr) -> exp.Expr | None:
    aggs = [node for node in value.find_all(exp.AggFunc)]
    if not aggs or any(not isinstance(a, _NULL_SKIPPING) for a in aggs) or value.find(exp.Window):
        return None

    def when(arg: exp.Expr) -> exp.Expr:
        return exp.Case(ifs=[exp.If(this=exp.paren(cond.copy()), true=arg)])

    # an entity none of whose rows pass `where` has no rows for this var: NULL, as with a WHERE clause
    any_row = exp.Count(this=when(exp.Literal.number(1))).eq(0)

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, _NULL_SKIPPING):
            node = node.copy()
            arg = node.this
            if isinstance(arg, exp.Star):
                node.set("this", when(exp.Literal.number(1)))
            elif isinstance(arg, exp.Distinct):
                arg.set("expressions", [when(e) for e in arg.expressions])
            elif arg is not None:
                node.set("this", when(arg))
        return node

    filtered = value.copy().transform(fix)
    # the guard is one more aggregate per var: skip it where the filtered aggregate is already NULL without rows
    if isinstance(value, _NULL_WHEN_NO_ROWS):
        return filtered
    if isinstance(value, exp.Count) and isinstance(value.this, exp.Star):  # count(*): its own guard
        return exp.Nullif(this=filtered, expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=any_row, true=exp.null())], default=filtered)


def _features(step: Step, ctx: CompileContext) -> exp.Query:
    payload = step.payload_as(FeaturesPayload)
    main = _main(ctx, _entity(step))
    if not payload.coarser:
        return exp.select(col(main), *(col(f) for f in payload.features)).from_(
            ctx.materials[payload.entity_vars].copy()
        )
    # pb: the vars of a coarser grain come from their own var table, LEFT JOINed on the main id (a profile
    # that grain's boundary did not know, or knew under another main id, gets NULL)
    query = exp.select(col(main, "v"), *(col(f, "v") for f in payload.features)).from_(
        ctx.materials[payload.entity_vars].copy().as_("v")
    )
    for n, (key, names) in enumerate(payload.coarser):
        alias = f"g{n}"
        query = query.select(*(col(f, alias) for f in names), copy=False).join(
            ctx.materials[key].copy().as_(alias), on=col(main, "v").eq(col(main, alias)), join_type="left", copy=False
        )
    return query


def _cohort(step: Step, ctx: CompileContext) -> exp.Query:
    """The parent's members passing every filter; a filter that is NULL drops the member."""
    payload = step.payload_as(CohortPayload)
    cohort = payload.cohort
    main = _main(ctx, cohort.entity)
    query = (
        exp.select(col(main, "p"))
        .from_(ctx.materials[payload.parent].copy().as_("p"))
        .join(ctx.materials[payload.parent_vars].copy().as_("v"), on=col(main, "p").eq(col(main, "v")))
    )

    def condition(text: str, what: str) -> exp.Expr:
        where = Where(cohort.origin.at("model_spec"), f"{cohort.name}.{what}")
        if not text:
            raise where.error("a filter needs `value` or `sql`")
        return exp.paren(bind_vars(ctx.fragment(text, where), lambda ref: col(ref, "v")))

    def expression(node: object, what: str) -> exp.Expr:
        if isinstance(node, str):
            return condition(node, what)
        if isinstance(node, dict) and len(node) == 1 and next(iter(node)).upper() in ("AND", "OR"):
            op, items = next(iter(node.items()))
            items = items if isinstance(items, list) else [items]
            parts = [expression(item, f"{what}.{op}[{i}]") for i, item in enumerate(items)]
            return exp.paren(exp.and_(*parts) if op.upper() == "AND" else exp.or_(*parts))
        raise Where(cohort.origin.at("model_spec"), f"{cohort.name}.{what}").error(
            "filter_expression takes a condition, or a mapping with one key AND or OR over a list of them"
        )

    conditions = []
    for n, flt in enumerate(cohort.spec.filter_pipeline):
        cond = condition(flt.value if flt.value is not None else (flt.sql or ""), f"filter_pipeline[{n}]")
        conditions.append(cond if flt.type == "include" else exp.not_(cond))
    if cohort.spec.filter_expression is not None:
        conditions.append(expression(cohort.spec.filter_expression, "filter_expression"))
    return query.where(exp.and_(*conditions)) if conditions else query


def _view(step: Step, ctx: CompileContext) -> exp.Query:
    payload = step.payload_as(ViewPayload)
    view, columns = payload.view, payload.columns
    main = _main(ctx, view.entity)
    source = ctx.materials[payload.source].copy().as_("f")
    # pb's feature_table_model: the end time after the main id (pb: COALESCE(CAST(<end> AS timestamp), now))
    valid_at = (
        [exp.alias_(exp.cast(ctx.time_literal(ctx.end_time), "timestamp"), "valid_at")] if payload.valid_at else []
    )
    if payload.coarser:  # a feature table listing vars of coarser grains: from their var tables, LEFT JOINed
        alias = {n: f"g{i}" for i, (_, names) in enumerate(payload.coarser) for n in names}
        query = exp.select(col(main, "f"), *valid_at, *(col(c, alias.get(c, "f")) for c in columns)).from_(
            source, copy=False
        )
        for i, (key, _) in enumerate(payload.coarser):
            on = col(main, "f").eq(col(main, f"g{i}"))
            query = query.join(ctx.materials[key].copy().as_(f"g{i}"), on=on, join_type="left", copy=False)
        return query
    if view.id_type is None or payload.id_stitcher is None:
        return exp.select(col(main, "f"), *valid_at, *(col(c, "f") for c in columns)).from_(source, copy=False)
    stitcher = ctx.materials[payload.id_stitcher].copy().as_("s")
    return (
        exp.select(exp.alias_(col("other_id", "s"), view.id_type), *(col(c, "f") for c in columns))
        .from_(stitcher, copy=False)
        .join(source, on=col(main, "s").eq(col(main, "f")), copy=False)
        .where(col("other_id_type", "s").eq(exp.Literal.string(view.id_type)), copy=False)
    )


def _sql_model(step: Step, ctx: CompileContext) -> exp.Query | list[exp.Expr]:
    """single_sql: one SELECT; multi_sql: the user's statements that build `{{ this }}` themselves."""
    model = step.payload_as(SqlModel)
    key = "single_sql" if model.spec.single_sql else "multi_sql"
    at = model.origin.at(f"model_spec.{key}")
    where = Where(at, f"{model.name}.{key}")
    windows: dict[str, exp.Query] = {}  # single_sql: CTE name -> an input's rows in the run's window

    def deref(path: str) -> str:
        target = resolve_deref(ctx.project, path)
        if target.column is not None:  # pb renders a column of a var table as its name
            return target.column
        if target.step is not None:
            return ctx.materials[target.step].sql(ctx.source_dialect)
        name = target.input or ""
        window = ctx.rows_read(name)
        if window is None:
            return ctx.input_table(name).sql(ctx.source_dialect)
        # pb hands a sql model an input's rows up to the run's end time, as it does every other step, under a
        # name (pb 0.26.4: a CTE `<input>_<n>`), so `{{ t }}.column` works as with a table
        rows = exp.select(exp.Star()).from_(ctx.input_table(name)).where(window)
        if not model.spec.single_sql:
            return rows.subquery().sql(ctx.source_dialect)
        cte = f"{name}_in_window"
        windows[cte] = rows
        return exp.to_identifier(cte, quoted=True).sql(ctx.source_dialect)

    this = ctx.materials[step.key].sql(ctx.source_dialect)
    rendered = render(
        model.spec.single_sql or model.spec.multi_sql or "",
        ctx.template_context(deref=deref, this_name=this),
        file=at.file,
        line=at.line,
        key=where.what,
    )
    if model.spec.single_sql:
        parsed = parse_query(_as_pb_wraps(rendered), ctx.source_dialect, where)
        if windows:  # before the query's own CTEs, which may read them
            own = parsed.args.get("with_")
            ctes = [
                exp.CTE(this=q, alias=exp.TableAlias(this=exp.to_identifier(n, quoted=True)))
                for n, q in windows.items()
            ]
            parsed.set(
                "with_",
                exp.With(
                    expressions=[*ctes, *(own.expressions if own else [])], recursive=own and own.args.get("recursive")
                ),
            )
        query = ctx.translated_query(parsed, where)
        assert isinstance(query, exp.Query)
        _check_id_columns(ctx, model, query)
        return query
    return [ctx.translated_query(s, where) for s in parse_statements(rendered, ctx.source_dialect, where)]


def _as_pb_wraps(single_sql: str) -> str:
    """pb writes a single_sql after `WITH dummy_variable AS (SELECT 1)` (and a CTE per input it reads), so
    projects may start theirs with `, name AS (...)` to add their own CTEs: that form reads the same here."""
    if single_sql.lstrip().startswith(","):
        return "WITH dummy_variable AS (SELECT 1)\n" + single_sql
    return single_sql


def _check_id_columns(ctx: CompileContext, model: SqlModel, query: exp.Query) -> None:
    """A sql model's ids are read from its rows: an id naming a column the model does not select fails on the
    warehouse (as it does under pb); said at the id, where the columns are known (no `*` over a table)."""
    ref = f"models/{model.name}"
    read: list[InputId] = []  # the ids something evaluates: pb builds nothing on the others
    if any(ref in e.stitcher.edge_sources for e in ctx.project.entities.values() if e.stitcher is not None):
        read += [i for i in model.ids if i.type != RUDDER_ID]  # nodes of the graph
    if any(v.spec.from_ == ref for v in ctx.project.vars):  # the main id of its rows: a rudder_id id, or the rest
        rudder = [i for i in model.ids if i.type == RUDDER_ID]
        read += rudder or model.ids
    columns, complete = output_columns(query)
    if not complete:
        return
    have = {c.lower() for c in columns}
    for n, id_ in enumerate(model.ids):
        if id_ not in read:
            continue
        at = model.origin.at(f"model_spec.ids[{n}].select")
        text = rendered_select(id_.select, ctx.source_dialect, Where(at, at.key))
        tree = parse_expression(text, ctx.source_dialect, Where(at, at.key))
        missing = sorted({c.name for c in tree.find_all(exp.Column) if c.name.lower() not in have})
        if missing:
            raise at.error(
                f"id `{id_.select}` of sql model '{model.name}' reads {', '.join(map(repr, missing))}, which the "
                "model does not select: its rows have no such column (pb's SQL fails on it too)",
                hint=f"the model's columns: {', '.join(columns[:12])}{', ...' if len(columns) > 12 else ''}",
            )


_BUILDERS = {
    StepKind.INPUT_VARS: _input_vars,
    StepKind.ID_STITCHER: _observations,
    StepKind.ALL: _all,
    StepKind.INPUT_VARS_MAPPED: _mapped,
    StepKind.ENTITY_VARS: _var_table,
    StepKind.COHORT_VARS: _var_table,
    StepKind.FEATURES: _features,
    StepKind.COHORT: _cohort,
    StepKind.VIEW: _view,
    StepKind.SQL_MODEL: _sql_model,
}

__all__ = ["CompileContext", "StepProgram", "compile_step", "ident"]
