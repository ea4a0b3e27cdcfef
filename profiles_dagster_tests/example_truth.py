"""Independent expected outputs of ``example_project``, computed in pure Python + pandas.

Why: the product compiles the project's YAML into SQL. To test it end to end we need the
answer derived a different way: this module reads the raw CSVs directly and applies the
documented Profiles semantics literally (id selects and filters, union-find stitching,
main-id choice, entity vars with defaults, window vars, an input var, a SQL model, a cohort).
It deliberately shares no code with the product; the project's YAML definitions are
mirrored as constants below (``test_example_truth`` checks they still match the YAML).

Types of the outputs:
* ids and text: ``str`` (object columns, ``None`` for NULL);
* timestamps: naive pandas ``datetime64`` columns (``NaT`` for NULL);
* counts with a default (page_views, order_count, active_order_days): ``int64``;
  counts / day differences that can be NULL (distinct_devices, days_since_*): ``Int64``;
* money (total_revenue, avg_order_value, *_amount): ``float64`` (``NaN`` for NULL). Sums are
  done exactly in ``Decimal`` and converted at the end; the cohort threshold is applied to
  the exact ``Decimal`` total, so 300.00 is in and 299.99 is out. Compare money with a
  tolerance (1e-9 relative is plenty).

Rows are not filtered by ``end_time``; it only feeds the ``days_since_*`` vars.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

# --------------------------------------------------------------------------- mirrored YAML

SALT = "fe971b24-9572-4005-b22f-351e9c09274d"
INPUTS: tuple[str, ...] = ("identifies", "tracks", "pages", "orders")
INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "identifies": ("message_id", "anonymous_id", "user_id", "email", "timestamp"),
    "tracks": ("message_id", "anonymous_id", "user_id", "event", "timestamp"),
    "pages": ("message_id", "anonymous_id", "path", "timestamp"),
    "orders": ("order_id", "user_id", "email", "amount", "status", "timestamp"),
}

#: id_type -> filters, as in pb_project.yaml: (filter type, "value" | "regex", operand).
ID_TYPE_FILTERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "user_id": (("exclude", "value", "0"),),
    "anonymous_id": (("exclude", "regex", "(undefined|null|unknown|test.*)"),),
    "email": (
        ("include", "regex", r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"),
        ("exclude", "value", "noreply@example.com"),
    ),
}

#: input -> its ``ids`` entries (select expression, id_type), as in models/inputs.yaml.
INPUT_IDS: dict[str, tuple[tuple[str, str], ...]] = {
    "identifies": (
        ("user_id", "user_id"),
        ("anonymous_id", "anonymous_id"),
        ("lower(trim(email))", "email"),
    ),
    "tracks": (("user_id", "user_id"), ("anonymous_id", "anonymous_id")),
    "pages": (("anonymous_id", "anonymous_id"),),
    "orders": (("user_id", "user_id"), ("lower(trim(email))", "email")),
}


def _lower_trim(value: str | None) -> str | None:
    # SQL trim() strips spaces only (not tabs/newlines), hence strip(" ").
    return None if value is None else value.strip(" ").lower()


SELECTS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "user_id": lambda row: row["user_id"],
    "anonymous_id": lambda row: row["anonymous_id"],
    "lower(trim(email))": lambda row: _lower_trim(row["email"]),
}

#: is_feature entity vars of the user entity (not input vars, not last_order_at), alphabetical.
FEATURES: tuple[str, ...] = tuple(
    sorted(
        (
            "first_seen_at",
            "last_seen_at",
            "days_since_last_seen",
            "distinct_devices",
            "page_views",
            "latest_email",
            "order_count",
            "total_revenue",
            "avg_order_value",
            "first_order_amount",
            "last_order_amount",
            "days_since_last_order",
            "active_order_days",
        )
    )
)
#: every entity var of var groups user_activity and user_orders, in definition order.
VAR_COLUMNS: tuple[str, ...] = (
    "first_seen_at",
    "last_seen_at",
    "days_since_last_seen",
    "distinct_devices",
    "page_views",
    "latest_email",
    "order_count",
    "total_revenue",
    "avg_order_value",
    "first_order_amount",
    "last_order_at",
    "last_order_amount",
    "days_since_last_order",
    "active_order_days",
)
HIGH_VALUE_MIN_REVENUE = Decimal(300)

TIMESTAMP_COLS = ("first_seen_at", "last_seen_at", "last_order_at")
MONEY_COLS = (
    "total_revenue",
    "avg_order_value",
    "first_order_amount",
    "last_order_amount",
    "hv_max_order_amount",
)
NULLABLE_INT_COLS = (
    "days_since_last_seen",
    "distinct_devices",
    "days_since_last_order",
)
INT_COLS = ("page_views", "order_count", "active_order_days")

Node = tuple[str, str]  # (id_type, value)
Row = dict[str, Any]


# --------------------------------------------------------------------------- primitives


def rudder_id(other_id: str, other_id_type: str) -> str:
    """The main-id hash: 'rid' + sha1(sha1(SALT + id)[:32] + type)[:32]."""
    inner = hashlib.sha1((SALT + other_id).encode("utf-8")).hexdigest()[:32]
    return "rid" + hashlib.sha1((inner + other_id_type).encode("utf-8")).hexdigest()[:32]


def clean_id(id_type: str, value: str | None) -> str | None:
    """Apply the always-on NULL/'' drop and the id_type's filters to a selected value."""
    if value is None or value == "":
        return None
    for kind, how, operand in ID_TYPE_FILTERS[id_type]:
        hit = value == operand if how == "value" else re.fullmatch(operand, value) is not None
        if (kind == "include" and not hit) or (kind == "exclude" and hit):
            return None
    return value


def row_nodes(input_name: str, row: Row) -> list[Node]:
    """The non-dropped id nodes a row of ``input_name`` carries (deduplicated, in ids order)."""
    nodes: list[Node] = []
    for select, id_type in INPUT_IDS[input_name]:
        value = clean_id(id_type, SELECTS[select](row))
        if value is not None and (id_type, value) not in nodes:
            nodes.append((id_type, value))
    return nodes


def read_input(data_dir: Path, name: str) -> list[Row]:
    """Read one CSV as dicts: '' -> None, timestamp -> datetime, amount -> Decimal."""
    rows: list[Row] = []
    with (Path(data_dir) / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if tuple(header) != INPUT_COLUMNS[name]:
            raise ValueError(f"{name}.csv header {header} != {INPUT_COLUMNS[name]}")
        for values in reader:
            row: Row = {col: (v if v != "" else None) for col, v in zip(header, values, strict=True)}
            row["timestamp"] = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")
            if "amount" in row and row["amount"] is not None:
                row["amount"] = Decimal(row["amount"])
            rows.append(row)
    stamps = [r["timestamp"] for r in rows]
    if len(set(stamps)) != len(stamps):
        # Window vars ("latest", "first") would be ambiguous; the generator guarantees this.
        raise ValueError(f"{name}.csv has tied timestamps")
    return rows


def read_inputs(data_dir: Path) -> dict[str, list[Row]]:
    """All four inputs, as read by :func:`read_input`."""
    return {name: read_input(data_dir, name) for name in INPUTS}


class UnionFind:
    """Plain union-find over id nodes."""

    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}

    def add(self, node: Node) -> None:
        self.parent.setdefault(node, node)

    def find(self, node: Node) -> Node:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Node, b: Node) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _date_diff_days(a: datetime | None, b: datetime) -> int | None:
    """cast(b as date) - cast(a as date): calendar-day boundaries crossed from a to b."""
    return None if a is None else (b.date() - a.date()).days


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """SQL sum: ignores NULL, NULL when nothing is left."""
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


def _max(values: Iterable[Any]) -> Any:
    """SQL max: ignores NULL, NULL when nothing is left."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _coalesce(value: Any, default: Any) -> Any:
    return default if value is None else value


# --------------------------------------------------------------------------- result


@dataclass
class Truth:
    """Expected product outputs, plus the intermediate facts tests may want to inspect."""

    end_time: datetime
    id_graph: pd.DataFrame
    var_table: pd.DataFrame
    feature_view: pd.DataFrame
    feature_view_by_email: pd.DataFrame
    high_value: set[str]
    high_value_feature_view: pd.DataFrame
    #: input name -> rows as read, each with an extra ``user_main_id`` (None if no valid id).
    inputs: dict[str, list[Row]] = field(repr=False, default_factory=dict)
    #: node -> main id.
    node_main: dict[Node, str] = field(repr=False, default_factory=dict)
    #: undirected edges between distinct nodes that share a row.
    edges: set[frozenset[Node]] = field(repr=False, default_factory=set)
    #: exact (Decimal) completed revenue per entity, after the default.
    total_revenue_exact: dict[str, Decimal] = field(repr=False, default_factory=dict)


# --------------------------------------------------------------------------- computation


def _stitch(
    inputs: dict[str, list[Row]],
) -> tuple[dict[Node, str], dict[Node, datetime], set[frozenset[Node]]]:
    """Union-find over every row of every input; returns node->main id, first_seen_at, edges."""
    uf = UnionFind()
    first_seen: dict[Node, datetime] = {}
    edges: set[frozenset[Node]] = set()
    for name in INPUTS:
        for row in inputs[name]:
            nodes = row_nodes(name, row)
            for node in nodes:
                uf.add(node)
                ts = row["timestamp"]
                if node not in first_seen or ts < first_seen[node]:
                    first_seen[node] = ts
            for i, a in enumerate(nodes):
                for b in nodes[i + 1 :]:
                    uf.union(a, b)
                    edges.add(frozenset((a, b)))
    members: dict[Node, list[Node]] = defaultdict(list)
    for node in uf.parent:
        members[uf.find(node)].append(node)
    node_main: dict[Node, str] = {}
    for group in members.values():
        # earliest first_seen_at wins; ties broken by the smaller hash
        leader = min(group, key=lambda n: (first_seen[n], rudder_id(n[1], n[0])))
        main = rudder_id(leader[1], leader[0])
        for node in group:
            node_main[node] = main
    return node_main, first_seen, edges


def _entity_vars(
    entity: str,
    rows: dict[str, list[Row]],
    daily_days: set[Any],
    end_time: datetime,
) -> dict[str, Any]:
    """All user vars of one entity from its rows per input (values after defaults)."""
    tracks, pages, identifies, orders = (
        rows["tracks"],
        rows["pages"],
        rows["identifies"],
        rows["orders"],
    )
    v: dict[str, Any] = {"user_main_id": entity}

    # user_activity
    v["first_seen_at"] = min((r["timestamp"] for r in tracks), default=None)
    v["last_seen_at"] = _max(r["timestamp"] for r in tracks)
    v["days_since_last_seen"] = _date_diff_days(v["last_seen_at"], end_time)
    v["distinct_devices"] = (
        len({r["anonymous_id"] for r in tracks if r["anonymous_id"] is not None}) if tracks else None
    )
    v["page_views"] = _coalesce(len(pages) if pages else None, 0)
    # first_value(email) over (order by timestamp desc): the raw email of the latest row
    with_email = [r for r in identifies if r["email"] is not None and "@" in r["email"]]
    v["latest_email"] = max(with_email, key=lambda r: r["timestamp"])["email"] if with_email else None

    # user_orders
    completed = sorted(
        (r for r in orders if r["status"] == "completed"),
        key=lambda r: (r["timestamp"], r["order_id"]),
    )
    v["order_count"] = _coalesce(len(completed) if completed else None, 0)
    v["total_revenue"] = _coalesce(_sum(r["amount"] for r in completed), Decimal(0))
    v["avg_order_value"] = None if v["order_count"] == 0 else v["total_revenue"] / v["order_count"]
    # input var order_number = row_number() over completed orders; first_order_amount = its row 1
    v["first_order_amount"] = _max(r["amount"] for r in completed[:1])
    v["last_order_at"] = _max(r["timestamp"] for r in completed)
    v["last_order_amount"] = completed[-1]["amount"] if completed else None
    v["days_since_last_order"] = _date_diff_days(v["last_order_at"], end_time)
    v["active_order_days"] = _coalesce(len(daily_days) if daily_days else None, 0)
    return v


def _frame(records: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    """Build a DataFrame with the documented column types."""
    cols = list(columns)
    df = pd.DataFrame.from_records(records, columns=cols)
    for col in cols:
        if col in TIMESTAMP_COLS:
            df[col] = pd.to_datetime(df[col])
        elif col in MONEY_COLS:
            df[col] = pd.array([None if x is None else float(x) for x in df[col]], dtype="float64")
        elif col in NULLABLE_INT_COLS:
            df[col] = pd.array(list(df[col]), dtype="Int64")
        elif col in INT_COLS:
            df[col] = df[col].astype("int64")
        else:
            df[col] = df[col].astype(object)
    return df


def compute_truth(data_dir: Path, end_time: datetime) -> Truth:
    """Compute every expected output of the example project from its CSVs."""
    inputs = read_inputs(Path(data_dir))
    node_main, first_seen, edges = _stitch(inputs)

    # id graph: one row per node
    graph_records = [
        {
            "user_main_id": main,
            "other_id": node[1],
            "other_id_type": node[0],
            "first_seen_at": first_seen[node],
        }
        for node, main in node_main.items()
    ]
    id_graph = _frame(graph_records, ("user_main_id", "other_id", "other_id_type", "first_seen_at"))
    id_graph = id_graph.sort_values(["user_main_id", "other_id_type", "other_id"], ignore_index=True)

    # rows -> entity
    per_entity: dict[str, dict[str, list[Row]]] = defaultdict(lambda: {name: [] for name in INPUTS})
    for name in INPUTS:
        for row in inputs[name]:
            nodes = row_nodes(name, row)
            row["user_main_id"] = node_main[nodes[0]] if nodes else None
            if row["user_main_id"] is not None:
                per_entity[row["user_main_id"]][name].append(row)

    # sql model user_daily_orders: completed orders grouped by (raw user_id, date); mapped by user_id
    daily: dict[str, set[Any]] = defaultdict(set)
    for user_id, day in {(r["user_id"], r["timestamp"].date()) for r in inputs["orders"] if r["status"] == "completed"}:
        uid = clean_id("user_id", user_id)
        if uid is not None:
            daily[node_main[("user_id", uid)]].add(day)

    entities = sorted(set(node_main.values()))
    empty: dict[str, list[Row]] = {name: [] for name in INPUTS}
    records = [_entity_vars(e, per_entity.get(e, empty), daily.get(e, set()), end_time) for e in entities]
    total_exact = {rec["user_main_id"]: rec["total_revenue"] for rec in records}
    var_table = _frame(records, ("user_main_id", *VAR_COLUMNS))

    feature_view = var_table[["user_main_id", *FEATURES]].copy()

    emails = id_graph.loc[id_graph["other_id_type"] == "email", ["other_id", "user_main_id"]]
    feature_view_by_email = (
        emails.rename(columns={"other_id": "email"})
        .merge(feature_view, on="user_main_id", how="left")
        .drop(columns="user_main_id")
        .sort_values("email", ignore_index=True)
    )

    high_value = {e for e, total in total_exact.items() if total >= HIGH_VALUE_MIN_REVENUE}
    hv_records = [
        {
            "user_main_id": e,
            "hv_max_order_amount": _max(r["amount"] for r in per_entity[e]["orders"] if r["status"] == "completed"),
        }
        for e in sorted(high_value)
    ]
    hv = _frame(hv_records, ("user_main_id", "hv_max_order_amount"))
    high_value_feature_view = hv.merge(feature_view, on="user_main_id", how="left")

    return Truth(
        end_time=end_time,
        id_graph=id_graph,
        var_table=var_table,
        feature_view=feature_view,
        feature_view_by_email=feature_view_by_email,
        high_value=high_value,
        high_value_feature_view=high_value_feature_view,
        inputs=inputs,
        node_main=node_main,
        edges=edges,
        total_revenue_exact=total_exact,
    )
