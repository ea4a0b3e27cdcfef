"""pb's templates (pongo2) rendered with Jinja2: `{{ user.Var("x") }}`, `this.DeRef(...)`, macros.

Every template is first translated from pongo2 to Jinja2 (`pongo2.py`) so that pb's operators,
`with` forms and filters keep pb's meaning. The renderer knows nothing of SQL: callers pass in what
each reference should become, and a recording pass finds what a template refers to, so the planner
can order the steps. An error names the file and line of the template that holds it, a macro's
own when it sits in a macro.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jinja2

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project import pongo2_runtime
from profiles_dagster.project.pongo2 import Pongo2SyntaxError, translate

if TYPE_CHECKING:
    from profiles_dagster.project.model import Project

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    extensions=["jinja2.ext.do"],
)
pongo2_runtime.install(_ENV)


class EntityRefs:
    """`{{ user.Var("x") }}` and `{{ user.x }}` both resolve through `resolve_var`."""

    def __init__(self, entity: str, resolve_var: Callable[[str, str], str]) -> None:
        self._entity = entity
        self._resolve = resolve_var

    def Var(self, name: str) -> str:  # noqa: N802 - pb's spelling
        return self._resolve(self._entity, name)

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._resolve(self._entity, name)


@dataclass(frozen=True)
class Contract:
    """pb's `BuildContract('{json}')`: what a sql model needs of a model it DeRefs (its entities' ids and
    columns), checked as pb checks a `contract:`, against what the referenced model is known to hold."""

    with_entity_ids: tuple[str, ...] = ()
    with_columns: tuple[str, ...] = ()
    is_event_stream: bool | None = None


_CONTRACT_KEYS = {"is_optional", "is_event_stream", "is_append_only", "with_entity_ids", "with_columns"}


def build_contract(text: Any) -> Contract:
    """`BuildContract` takes a contract written as JSON, with the keys of a model's `contract:`."""
    try:
        spec = json.loads(pongo2_runtime.to_string(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"BuildContract: not a JSON object: {exc.msg}") from exc
    if not isinstance(spec, dict):
        raise ValueError("BuildContract: not a JSON object")
    unknown = sorted(set(spec) - _CONTRACT_KEYS)
    if unknown:
        raise ValueError(f"BuildContract: unknown key(s) {unknown} (known: {sorted(_CONTRACT_KEYS)})")
    columns = spec.get("with_columns") or []
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in columns
    ):
        raise ValueError("BuildContract: with_columns is a list of {name, datatype}")
    entities = spec.get("with_entity_ids") or []
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        raise ValueError("BuildContract: with_entity_ids is a list of entity names")
    stream = spec.get("is_event_stream")
    return Contract(tuple(entities), tuple(c["name"] for c in columns), stream if isinstance(stream, bool) else None)


# DeRef keywords of pb's checkpoints (incremental models): a material of an earlier run (`pre_existing`,
# `checkpoint_name`) or the rows added since one (`baseline_name`, an `incr_delta_tbl` path)
_CHECKPOINT_KEYWORDS = ("checkpoint_name", "pre_existing", "baseline_name")
_UNSUPPORTED_KEYWORDS = ("time_grain_spec", "base_context")


class Deref(str):
    """What `this.DeRef(...)` gives: the SQL name of what it reads, with pb's `IsEnabled()` and `Except()`
    (a DeRef is enabled when every one of its `prereqs` is)."""

    enabled = True

    def IsEnabled(self) -> bool:  # noqa: N802 - pb's spelling
        return self.enabled

    def Except(self) -> Deref:  # noqa: N802 - pb's spelling
        return Deref("") if not self.enabled else NotEnabled("Except()", "the negation of an enabled DeRef")


class NotEnabled(Deref):
    """A DeRef that reads nothing in this run: pb's state of a model with no checkpoint yet. Templates test
    it with IsEnabled(); writing it into SQL is an error, never an empty name."""

    enabled = False

    def __new__(cls, call: str, why: str) -> NotEnabled:
        made = super().__new__(cls, "")
        made.call, made.why = call, why
        return made

    def __str__(self) -> str:
        raise ValueError(
            f"{self.call} is not enabled in this run ({self.why}) and cannot be written into SQL; "
            "test it with IsEnabled() first, as pb's incremental templates do"
        )


class ThisRefs:
    """`this.DeRef("inputs/x")` inside sql_template models."""

    def __init__(
        self,
        deref: Callable[[str], str],
        name: str = "",
        on_contract: Callable[[str, Contract], None] | None = None,
    ) -> None:
        self._deref = deref
        self._name = name
        self._on_contract = on_contract

    def DeRef(self, path: str | None = None, **kwargs: Any) -> Deref:  # noqa: N802 - pb's spelling
        unsupported = [k for k in kwargs if k in _UNSUPPORTED_KEYWORDS or k.endswith("base_context")]
        if unsupported:
            raise ValueError(f"DeRef with {', '.join(sorted(unsupported))} is not supported yet")
        call = f"DeRef({path!r})" if path else "DeRef()"
        prereqs = kwargs.pop("prereqs", None) or []
        if not isinstance(prereqs, list | tuple) or not all(isinstance(p, Deref) for p in prereqs):
            raise ValueError("DeRef prereqs= takes a list of DeRef(...) values")
        checkpoint = [k for k in kwargs if k in _CHECKPOINT_KEYWORDS] or (
            ["incr_delta_tbl"] if path and path.rstrip("/").endswith("/incr_delta_tbl") else []
        )
        if checkpoint:
            # This product keeps no checkpoints: every run is pb's run without one, i.e. its full-refresh branch
            return NotEnabled(call, f"{', '.join(checkpoint)}: pb's checkpoint of an earlier run, none kept here")
        blocked = [p for p in prereqs if not p.enabled]
        if blocked:
            return NotEnabled(call, "a DeRef in its prereqs is not enabled")
        contract = kwargs.pop("contract", None)
        dependency = kwargs.pop("dependency", "normal")
        if kwargs:
            raise ValueError(f"DeRef keyword arguments {sorted(kwargs)} are not supported")
        if dependency != "normal":
            raise ValueError(
                f"DeRef dependency={dependency!r} is not supported yet: pb then runs the model with or without "
                "what it reads; only dependency='normal' (pb's default) is"
            )
        if path is None:
            raise ValueError("DeRef needs the path of an input or model")
        if contract is not None:
            if not isinstance(contract, Contract):
                raise ValueError(f"DeRef contract= takes a BuildContract(...) value, not {type(contract).__name__}")
            if self._on_contract is not None:
                self._on_contract(path, contract)
        return Deref(self._deref(path))

    def __str__(self) -> str:
        return self._name


class WarehouseRefs:
    def __init__(self, database_type: str) -> None:
        self._type = database_type

    def DatabaseType(self) -> str:  # noqa: N802 - pb's spelling
        return self._type

    def DataType(self, name: str) -> str:  # noqa: N802 - pb's spelling
        return name


@dataclass
class TemplateContext:
    """What references render to; `entities` lists the names usable as `user.Var(...)`."""

    entities: tuple[str, ...] = ()
    resolve_var: Callable[[str, str], str] = lambda entity, name: name
    # inputs usable as `orders.Var("x")`: their input vars, which are plain columns of their rows
    sources: tuple[str, ...] = ()
    # cohorts usable as `{{ cohort.var }}`, which pb renders as the entity's `{{ entity.Var("var") }}`
    cohorts: Mapping[str, str] = field(default_factory=dict)  # cohort name -> its entity
    resolve_source_var: Callable[[str, str], str] = lambda source, name: name
    deref: Callable[[str], str] = lambda path: path
    on_contract: Callable[[str, Contract], None] | None = None
    this_name: str = ""
    database_type: str = "duckdb"
    values: Mapping[str, Any] = field(default_factory=dict)
    # name -> (params, body) or a Macro, which also says where the macro is defined
    macros: Mapping[str, Macro | tuple[list[str], str]] = field(default_factory=dict)

    def namespace(self) -> dict[str, Any]:
        ns: dict[str, Any] = dict(self.values)
        for source in self.sources:
            ns[source] = EntityRefs(source, self.resolve_source_var)
        for cohort, entity in self.cohorts.items():
            ns[cohort] = EntityRefs(entity, self.resolve_var)
        for entity in self.entities:
            ns[entity] = EntityRefs(entity, self.resolve_var)
        ns["this"] = ThisRefs(self.deref, self.this_name, self.on_contract)
        ns["BuildContract"] = build_contract
        ns["warehouse"] = WarehouseRefs(self.database_type)
        for name, macro in self.macros.items():
            ns[name] = _macro(name, macro if isinstance(macro, Macro) else Macro(*macro), self)
        return ns


@dataclass(frozen=True)
class Macro:
    """A pb macro (`macros: [{name, inputs, value}]`) and where its value is written."""

    params: list[str]
    body: str
    file: str | Path | None = None
    line: int | None = None
    key: str | None = None


def project_macros(project: Project) -> dict[str, Macro]:
    """A project's macros with where each is written, as templates call them."""
    macros = {}
    for name, macro in project.macros.items():
        origin = project.macro_origins.get(name)
        where = (origin.file, origin.line, origin.key) if origin else (None, None, None)
        macros[name] = Macro(macro.inputs, macro.value, *where)
    return macros


class MacroError(ProfilesError):
    """A template problem inside a macro's body, located in the macro's own file."""


def _macro(name: str, macro: Macro, ctx: TemplateContext) -> Any:
    if not macro.params:
        # pb lets zero-argument macros be used bare: {{ frame_clause }}
        return _BareMacro(name, macro, ctx)

    def call(*args: Any) -> str:
        if len(args) != len(macro.params):
            raise ValueError(f"macro {name} takes {len(macro.params)} argument(s), got {len(args)}")
        # pb renders templates nested inside macro arguments
        values = {p: render_text(pongo2_runtime.to_string(a), ctx) for p, a in zip(macro.params, args, strict=True)}
        return _render_macro(name, macro, ctx, values)

    return call


def _render_macro(name: str, macro: Macro, ctx: TemplateContext, values: Mapping[str, Any]) -> str:
    try:
        return render_text(macro.body, ctx, extra=values)
    except MacroError:
        raise
    except Exception as exc:
        if isinstance(exc, ProfilesError) or macro.file is None:
            raise
        problem = _describe(exc, macro.body, macro.line)
        if problem is None:
            raise
        message, line = problem
        raise MacroError(f"in macro '{name}': {message}", file=macro.file, line=line, key=macro.key) from exc


class _BareMacro:
    def __init__(self, name: str, macro: Macro, ctx: TemplateContext) -> None:
        self._name = name
        self._macro = macro
        self._ctx = ctx

    def __str__(self) -> str:
        return _render_macro(self._name, self._macro, self._ctx, {})

    def __call__(self) -> str:
        return str(self)


def render_text(text: str, ctx: TemplateContext, extra: Mapping[str, Any] | None = None) -> str:
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    ns = ctx.namespace()
    if extra:
        ns.update(extra)
    return _template(text).render(ns)


@lru_cache(maxsize=1024)  # some 4 KiB each
def _template(text: str) -> jinja2.Template:
    """Compiled once: a template is rendered to plan its step, to compile it, and again in each context."""
    return _ENV.from_string(translate(text))


def _template_line(text: str, line: int, start: int | None, first_line: int | None) -> int | None:
    """The file line of a template's line: a multi-line template is a block scalar starting below its key."""
    if first_line is not None:
        return first_line + line - 1
    if start is None:
        return None
    return start + line if "\n" in text.rstrip("\n") else start


def _failing_line(tb: TracebackType | None) -> int | None:
    """The template line Jinja2 was running when it raised (its rewritten frames say so)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(
    exc: BaseException, text: str, start: int | None, first_line: int | None = None
) -> tuple[str, int | None] | None:
    """A template problem's message and file line, or None when it is no template problem."""
    if isinstance(exc, Pongo2SyntaxError):
        kind, message, line = "template syntax error", exc.message, exc.line
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        kind, message, line = "template syntax error", exc.message or str(exc), exc.lineno
    elif isinstance(exc, jinja2.UndefinedError):
        kind, message, line = "undefined in template", exc.message or str(exc), _failing_line(exc.__traceback__)
    elif isinstance(exc, jinja2.TemplateError | ValueError | TypeError | AttributeError):
        kind, message, line = "template error", str(exc), _failing_line(exc.__traceback__)
    else:
        return None
    if line is None or "\n" not in text.rstrip("\n"):
        return f"{kind}: {message}", start
    return f"{kind} (line {line} of the template): {message}", _template_line(text, line, start, first_line)


def render(
    text: str,
    ctx: TemplateContext,
    *,
    file: Any = None,
    line: int | None = None,
    key: str | None = None,
    first_line: int | None = None,
) -> str:
    """Render, turning any template problem into a located ProfilesError.

    `line` is where the template's key is; `first_line`, when known, the file line of the template's
    own first line (1 for a whole file).
    """
    try:
        return render_text(text, ctx)
    except MacroError as exc:
        caller = f"{file}:{line}" if file is not None and line is not None else (str(file) if file else None)
        where = " ".join(part for part in (caller, key) if part)
        called = f"called from {where}" if where else None
        hint = "; ".join(part for part in (exc.hint, called) if part) or None
        raise MacroError(exc.message, file=exc.file, line=exc.line, key=exc.key, hint=hint) from exc
    except ProfilesError:
        raise
    except Exception as exc:
        problem = _describe(exc, text, line, first_line)
        if problem is None:
            raise
        message, at = problem
        raise ProfilesError(message, file=file, line=at, key=key) from exc


@dataclass
class References:
    vars: set[tuple[str, str]] = field(default_factory=set)
    source_vars: set[tuple[str, str]] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    contracts: list[tuple[str, Contract]] = field(default_factory=list)


def find_references(text: str, ctx: TemplateContext, **where: Any) -> References:
    """Render once with recording resolvers to learn which vars and models a template uses."""
    found = References()

    def record_var(entity: str, name: str) -> str:
        found.vars.add((entity, name))
        return name

    def record_path(path: str) -> str:
        found.paths.add(path)
        return path

    def record_source_var(source: str, name: str) -> str:
        found.source_vars.add((source, name))
        return name

    recording = TemplateContext(
        entities=ctx.entities,
        resolve_var=record_var,
        sources=ctx.sources,
        cohorts=ctx.cohorts,
        resolve_source_var=record_source_var,
        deref=record_path,
        on_contract=lambda path, contract: found.contracts.append((path, contract)),
        this_name=ctx.this_name,
        database_type=ctx.database_type,
        values=ctx.values,
        macros=ctx.macros,
    )
    render(text, recording, **where)
    return found
