"""Which SQL functions and constructs a corpus of pb projects uses, and whether each keeps its meaning per engine.

    python benchmarks/sql_census.py                                  # ../shared/pb_corpus
    python benchmarks/sql_census.py --list LOADS_CORE.txt --markdown # the table for a note or the README
    python benchmarks/sql_census.py path/to/projects

Each project is read with the product's own loader and planner, and every step is compiled as `validate`
would (templates rendered for the project's dialect, from benchmarks/corpus_dialects.toml), so the census sees
exactly the SQL a run parses: var selects, where clauses, window order_by/partition_by, input wheres and
sql_template models. Each fragment's tree (parsed in the project's dialect, before translation) is walked
for function names and constructs (casts by type, `:` paths, brackets, QUALIFY, LATERAL, windows, explicit
NULLS FIRST/LAST, division, ...).

Per target engine a construct is
  same      the product's transpile rules list it as checked by a test for (dialect, engine)
            (`CHECKED` of the modules in profiles_dagster/sql/transpile/), and no occurrence is refused
  refused   translate() raises UnfaithfulError on its occurrences (`refused 2/5` when only some are)
  unchecked neither: it may well be right, but no test says so
Nothing is written; the corpus is only read.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from profiles_dagster.clock import default_end_time  # noqa: E402
from profiles_dagster.errors import ProfilesError  # noqa: E402
from profiles_dagster.offline import PLACEHOLDER_SCHEMA  # noqa: E402
from profiles_dagster.plan.planner import build_plan  # noqa: E402
from profiles_dagster.project.loader import load_project  # noqa: E402
from profiles_dagster.sql import transpile  # noqa: E402
from profiles_dagster.sql.compiler import CompileContext, compile_step  # noqa: E402
from profiles_dagster.sql.fragments import Where  # noqa: E402
from profiles_dagster.sql.names import material_name, table  # noqa: E402

CORPUS = Path("shared") / "pb_corpus"
DIALECTS: dict[str, str] = tomllib.loads((Path(__file__).with_name("corpus_dialects.toml")).read_text())["dialects"]
TARGETS = ("duckdb", "postgres")
HEADER = ["construct", "dialect", "count", "projects", *TARGETS]

# Nodes that are plumbing, not constructs a user chose (a column, a literal, a name, AND/OR, ...)
_PLUMBING: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Star,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Paren,
    exp.Null,
    exp.Boolean,
    exp.DataType,
    exp.Var,
    exp.Tuple,
    exp.From,
    exp.Where,
    exp.Group,
    exp.Order,
    exp.Select,
    exp.Subquery,
    exp.CTE,
    exp.With,
    exp.Join,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Neg,
    exp.Dot,
    exp.If,  # a CASE's WHEN arm (IFF is its own If at top level: labelled below)
    exp.Case,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Distinct,
    exp.Placeholder,
    exp.Interval,
    exp.WindowSpec,
    exp.Limit,
    exp.Having,
    exp.Union,
    exp.Create,
    exp.Schema,
    exp.DPipe,
    exp.Exists,
    exp.Ordered,
    exp.Values,
    exp.PropertyEQ,
    exp.DataTypeParam,
    exp.Kwarg,
    exp.JSONPath,
    exp.JSONPathKey,
    exp.JSONPathRoot,
    exp.JSONPathSubscript,
)


def label(node: exp.Expr, dialect: str) -> str | None:
    """The name a construct goes by in the census (and in the transpile modules' `CHECKED` lists): a function
    by its name as the source dialect writes it, other constructs by a short description. None: plumbing."""
    if isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):
        return _func_name(node, dialect)  # IFF / IF
    if isinstance(node, exp.Ordered):
        if node.args.get("nulls_first") is not None and _explicit_nulls(node, dialect):
            return "NULLS FIRST/LAST"
        return None
    if isinstance(node, exp.Case):
        return "CASE"
    if isinstance(node, _PLUMBING):
        return None
    if isinstance(node, exp.TryCast):
        return f"TRY_CAST(… AS {node.to.sql(dialect)})"
    if isinstance(node, exp.Cast):
        return f"CAST(… AS {node.to.sql(dialect)})"
    if isinstance(node, exp.Div):
        return "/ (division)"
    if isinstance(node, exp.IntDiv):
        return "DIV (integer division)"
    if isinstance(node, exp.Mod):
        return "% (modulo)"
    if isinstance(node, exp.Bracket):
        return "[ ] (bracket index)"
    if isinstance(node, exp.JSONExtract | exp.JSONExtractScalar) and _is_colon_path(node, dialect):
        return ": (VARIANT path)"
    if isinstance(node, exp.Qualify):
        return "QUALIFY"
    if isinstance(node, exp.Lateral):
        return "LATERAL"
    if isinstance(node, exp.Window):
        return "OVER (window)"
    if isinstance(node, exp.WithinGroup):
        return "WITHIN GROUP"
    if isinstance(node, exp.TableFromRows):
        return "TABLE(…)"
    if isinstance(node, exp.IgnoreNulls):
        return "IGNORE NULLS"
    if isinstance(node, exp.RegexpLike) and node.meta.get("rlike"):
        return "RLIKE"
    if isinstance(node, exp.ToChar) and node.args.get("format") is None:
        return f"{_func_name(node, dialect)} (no format)"  # the text depends on the value's type
    if isinstance(node, exp.Func):
        return _func_name(node, dialect)
    return type(node).__name__


def _func_name(node: exp.Expr, dialect: str) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    text = node.sql(dialect=dialect)
    head = text.split("(", 1)[0].strip().upper()
    return head if head and head.replace("_", "").isalnum() else type(node).__name__


def _explicit_nulls(node: exp.Ordered, dialect: str) -> bool:
    text = node.sql(dialect=dialect).upper()
    return "NULLS FIRST" in text or "NULLS LAST" in text


def _is_colon_path(node: exp.Expr, dialect: str) -> bool:
    return dialect == "snowflake" and ":" in node.sql(dialect=dialect).split("(", 1)[0]


def constructs(tree: exp.Expr, dialect: str) -> Iterator[tuple[str, exp.Expr]]:
    """Every construct of a fragment's tree, with its node."""
    for node in tree.walk():
        name = label(node, dialect)
        if name is not None:
            yield name, node


def checked(source: str, target: str) -> set[str]:
    """The constructs the transpile modules declare kept by a test for (source, target): their `CHECKED`."""
    names: set[str] = set()
    for info in pkgutil.iter_modules(transpile.__path__):
        module = importlib.import_module(f"{transpile.__name__}.{info.name}")
        names |= set(getattr(module, "CHECKED", {}).get((source, target), ()))
    return names


@dataclass
class Tally:
    count: int = 0
    projects: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)  # target -> occurrences refused


@dataclass
class Census:
    tallies: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    failed: dict[str, str] = field(default_factory=dict)  # project -> why it could not be read

    def add(self, project: str, dialect: str, tree: exp.Expr) -> None:
        for name, node in constructs(tree, dialect):
            tally = self.tallies[(name, dialect)]
            tally.count += 1
            tally.projects.add(project)
            for target in TARGETS:
                if _refused(node, dialect, target):
                    tally.refused[target] += 1

    def rows(self) -> list[list[object]]:
        verdicts = {(s, t): checked(s, t) for s in {d for _, d in self.tallies} for t in TARGETS}
        out: list[list[object]] = []
        for (name, dialect), tally in sorted(self.tallies.items(), key=lambda kv: (-kv[1].count, kv[0])):
            cells = []
            for target in TARGETS:
                refused = tally.refused[target]
                if refused == tally.count:
                    cells.append("refused")
                elif refused:
                    cells.append(f"refused {refused}/{tally.count}")
                elif name in verdicts[(dialect, target)] or dialect == target:
                    cells.append("same")
                else:
                    cells.append("unchecked")
            out.append([name, dialect, tally.count, len(tally.projects), *cells])
        return out


def _refused(node: exp.Expr, source: str, target: str) -> bool:
    if source == target:
        return False
    try:
        transpile.translate(node, source, target)
    except transpile.UnfaithfulError:
        return True
    return False


def fragments(project_dir: Path, dialect: str) -> list[exp.Expr]:
    """Every SQL fragment a compile of the project parses, in its dialect, before translation."""
    project = load_project(project_dir)
    plan = build_plan(project)
    materials = {s.key: table(material_name(s.model_name, s.content_hash, 0), PLACEHOLDER_SCHEMA) for s in plan.steps}
    ctx = CompileContext(project, plan, "duckdb", dialect, materials, default_end_time())
    seen: list[exp.Expr] = []

    def capture(tree: exp.Expr, where: Where) -> exp.Expr:
        seen.append(tree.copy())
        try:
            return transpile.translate(tree, dialect, "duckdb")
        except transpile.UnfaithfulError:  # a refusal must not stop the census of the step's other fragments
            return tree if isinstance(tree, exp.Query) else exp.null()

    ctx.translated = capture  # type: ignore[method-assign]
    ctx.reuse_fragments = False  # each occurrence is parsed, so each is counted
    for step in plan.steps:
        try:
            compile_step(step, ctx)
        except ProfilesError:
            continue  # that step's own problem; its fragments before the failure are counted
    return seen


def census(folder: Path, names: list[str]) -> Census:
    result = Census()
    for name in names:
        dialect = DIALECTS.get(name, "duckdb")
        try:
            trees = fragments(folder / name, dialect)
        except ProfilesError as exc:
            result.failed[name] = str(exc).splitlines()[0]
            continue
        for tree in trees:
            result.add(name, dialect, tree)
    return result


def default_corpus() -> Path:
    for parent in REPO.parents:
        if (parent / CORPUS).is_dir():
            return parent / CORPUS
    return REPO.parent / CORPUS


def project_names(folder: Path, listing: str | None) -> list[str]:
    if listing:
        path = Path(listing) if Path(listing).is_file() else folder / listing
        lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
        return [line for line in lines if line]
    return sorted(p.parent.name for p in folder.glob("*/pb_project.yaml"))


def render_table(rows: list[list[object]], markdown: bool) -> str:
    cells = [[str(c) for c in row] for row in rows]
    if markdown:
        esc = [[c.replace("|", "\\|") for c in row] for row in cells]
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in esc])
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a folder of pb projects (default: ../shared/pb_corpus)")
    parser.add_argument("--list", help="a file naming the projects to read, one a line (e.g. LOADS_CORE.txt)")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (for a note or the README)")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder else default_corpus()
    names = project_names(folder, args.list)
    result = census(folder, names)
    print(render_table(result.rows(), args.markdown))
    read = len(names) - len(result.failed)
    print(f"\n{read}/{len(names)} projects read")
    for name, why in sorted(result.failed.items()):
        print(f"  not read: {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
