"""pb's templates (pongo2) rendered with Jinja2: `{{ user.Var("x") }}`, `this.DeRef(...)`, macros.

The renderer knows nothing of SQL: callers pass in what each reference should become, and a
recording pass finds what a template refers to, so the planner can order the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2

from profiles_dagster.errors import ProfilesError

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    extensions=["jinja2.ext.do"],
)
_ENV.filters["isnil"] = lambda value: value is None or isinstance(value, jinja2.Undefined)


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


class ThisRefs:
    """`this.DeRef("inputs/x")` inside sql_template models."""

    def __init__(self, deref: Callable[[str], str], name: str = "") -> None:
        self._deref = deref
        self._name = name

    def DeRef(self, path: str, **kwargs: Any) -> str:  # noqa: N802 - pb's spelling
        if kwargs:
            raise ValueError(f"DeRef keyword arguments {sorted(kwargs)} are not supported")
        return self._deref(path)

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
    resolve_source_var: Callable[[str, str], str] = lambda source, name: name
    deref: Callable[[str], str] = lambda path: path
    this_name: str = ""
    database_type: str = "duckdb"
    values: Mapping[str, Any] = field(default_factory=dict)
    macros: Mapping[str, tuple[list[str], str]] = field(default_factory=dict)

    def namespace(self) -> dict[str, Any]:
        ns: dict[str, Any] = dict(self.values)
        for source in self.sources:
            ns[source] = EntityRefs(source, self.resolve_source_var)
        for entity in self.entities:
            ns[entity] = EntityRefs(entity, self.resolve_var)
        ns["this"] = ThisRefs(self.deref, self.this_name)
        ns["warehouse"] = WarehouseRefs(self.database_type)
        for name, (params, body) in self.macros.items():
            ns[name] = _macro(name, params, body, self)
        return ns


def _macro(name: str, params: list[str], body: str, ctx: TemplateContext) -> Any:
    if not params:
        # pb lets zero-argument macros be used bare: {{ frame_clause }}
        return _BareMacro(body, ctx)

    def call(*args: Any) -> str:
        if len(args) != len(params):
            raise ValueError(f"macro {name} takes {len(params)} argument(s), got {len(args)}")
        # pb renders templates nested inside macro arguments
        values = {p: render_text(str(a), ctx) for p, a in zip(params, args, strict=True)}
        return render_text(body, ctx, extra=values)

    return call


class _BareMacro:
    def __init__(self, body: str, ctx: TemplateContext) -> None:
        self._body = body
        self._ctx = ctx

    def __str__(self) -> str:
        return render_text(self._body, self._ctx)

    def __call__(self) -> str:
        return str(self)


def render_text(text: str, ctx: TemplateContext, extra: Mapping[str, Any] | None = None) -> str:
    if "{{" not in text and "{%" not in text:
        return text
    ns = ctx.namespace()
    if extra:
        ns.update(extra)
    return _template(text).render(ns)


@lru_cache(maxsize=1024)  # some 4 KiB each
def _template(text: str) -> jinja2.Template:
    """Compiled once: a template is rendered to plan its step, to compile it, and again in each context."""
    return _ENV.from_string(text)


def render(
    text: str, ctx: TemplateContext, *, file: Any = None, line: int | None = None, key: str | None = None
) -> str:
    """Render, turning any template problem into a located ProfilesError."""
    try:
        return render_text(text, ctx)
    except ProfilesError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise ProfilesError(f"template syntax error: {exc.message}", file=file, line=line, key=key) from exc
    except jinja2.UndefinedError as exc:
        raise ProfilesError(f"undefined in template: {exc.message}", file=file, line=line, key=key) from exc
    except (jinja2.TemplateError, ValueError, TypeError, AttributeError) as exc:
        raise ProfilesError(f"template error: {exc}", file=file, line=line, key=key) from exc


@dataclass
class References:
    vars: set[tuple[str, str]] = field(default_factory=set)
    source_vars: set[tuple[str, str]] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)


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
        resolve_source_var=record_source_var,
        deref=record_path,
        this_name=ctx.this_name,
        database_type=ctx.database_type,
        values=ctx.values,
        macros=ctx.macros,
    )
    render(text, recording, **where)
    return found
