"""Self-checks of ``example_truth`` and the example data; none of them needs the product.

Why: the end-to-end tests trust ``example_truth`` as the oracle, so here we check that the
committed data really exercises the stitcher's edge cases and that a few values agree with a
second, deliberately different computation (pandas closure over the raw CSVs).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import deque
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from profiles_dagster_tests import example_truth as et

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "example_project"
DATA = PROJECT / "data"
END_TIME = datetime(2025, 11, 1)

JUNK = {
    "anonymous_id": {"undefined", "null", "unknown", "test-123"},
    "user_id": {"0"},
    "email": {"noreply@example.com", "not-an-email", "jane@localhost", "n/a"},
}


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the body runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def truth() -> et.Truth:
    return et.compute_truth(DATA, END_TIME)


def _adjacency(truth: et.Truth) -> dict[et.Node, set[et.Node]]:
    adj: dict[et.Node, set[et.Node]] = {node: set() for node in truth.node_main}
    for edge in truth.edges:
        a, b = tuple(edge)
        adj[a].add(b)
        adj[b].add(a)
    return adj


def _shortest_paths(adj: dict[et.Node, set[et.Node]], start: et.Node) -> dict[et.Node, list[et.Node]]:
    paths = {start: [start]}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in adj[node]:
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return paths


def _longest_chain(truth: et.Truth) -> list[et.Node]:
    """The longest shortest path in the graph (a genuinely multi-hop chain)."""
    adj = _adjacency(truth)
    best: list[et.Node] = []
    for node in sorted(adj):
        if node[0] == "anonymous_id":
            for path in _shortest_paths(adj, node).values():
                if len(path) > len(best) or (len(path) == len(best) and path < best):
                    best = path
    return best


# --------------------------------------------------------------------------- data shape


def test_generator_reproduces_committed_csvs(tmp_path: Path) -> None:
    gen = _load_module("example_generate_data", PROJECT / "generate_data.py")
    gen.main(["--out", str(tmp_path)])
    total = 0
    for name in et.INPUTS:
        committed = (DATA / f"{name}.csv").read_bytes()
        assert (tmp_path / f"{name}.csv").read_bytes() == committed, f"{name}.csv is stale: rerun the generator"
        total += len(committed)
    assert total < 2_000_000


def test_timestamps_in_range_and_distinct(truth: et.Truth) -> None:
    for name, rows in truth.inputs.items():
        stamps = [r["timestamp"] for r in rows]
        assert len(set(stamps)) == len(stamps), name
        assert min(stamps) >= datetime(2025, 1, 1) and max(stamps) <= datetime(2025, 10, 31, 23, 59, 59), name


def test_multi_hop_chain_exists(truth: et.Truth) -> None:
    chain = _longest_chain(truth)
    assert len(chain) >= 4, chain
    assert len({node[0] for node in chain}) >= 3, chain


def test_shared_device_merges_people(truth: et.Truth) -> None:
    """Some anonymous_id is the only link between two parts that each hold a user_id."""
    adj = _adjacency(truth)
    for device in (n for n in adj if n[0] == "anonymous_id" and sum(m[0] == "user_id" for m in adj[n]) >= 2):
        parts = []
        seen: set[et.Node] = {device}
        for start in adj[device]:
            if start in seen:
                continue
            part = {n for n in _shortest_paths({k: v - {device} for k, v in adj.items()}, start)}
            seen |= part
            parts.append(part)
        if sum(any(n[0] == "user_id" for n in part) for part in parts) >= 2:
            return
    pytest.fail("no shared device merging two people")


def test_junk_ids_are_in_data_but_not_in_graph(truth: et.Truth) -> None:
    raw_values = {
        "anonymous_id": {r["anonymous_id"] for n in ("identifies", "tracks", "pages") for r in truth.inputs[n]},
        "user_id": {r["user_id"] for n in ("identifies", "tracks", "orders") for r in truth.inputs[n]},
        "email": {(r["email"] or "").strip().lower() for n in ("identifies", "orders") for r in truth.inputs[n]},
    }
    graph = truth.id_graph
    for id_type, junk in JUNK.items():
        assert junk <= raw_values[id_type], f"data lacks some junk {id_type}"
        nodes = set(graph.loc[graph["other_id_type"] == id_type, "other_id"])
        assert not nodes & junk, id_type
        assert "" not in nodes and None not in nodes
    emails = graph.loc[graph["other_id_type"] == "email", "other_id"]
    assert emails.map(lambda e: e == e.strip().lower() and "@" in e).all()
    assert graph.groupby(["other_id_type", "other_id"]).size().max() == 1
    # the data does carry mixed-case / padded emails that normalise onto the graph
    raw_emails = [r["email"] for r in truth.inputs["identifies"] if r["email"]]
    assert any(e != e.strip() for e in raw_emails) and any(e != e.lower() for e in raw_emails)


def test_all_junk_rows_belong_to_no_one(truth: et.Truth) -> None:
    for name, rows in truth.inputs.items():
        assert any(r["user_main_id"] is None for r in rows), f"{name} has no all-junk row"


def test_every_valid_row_maps_to_an_entity(truth: et.Truth) -> None:
    mains = set(truth.id_graph["user_main_id"])
    assert mains == set(truth.var_table["user_main_id"])
    assert truth.var_table["user_main_id"].is_unique
    for name, rows in truth.inputs.items():
        for row in rows:
            nodes = et.row_nodes(name, row)
            assert (row["user_main_id"] is None) == (not nodes)
            if nodes:
                assert row["user_main_id"] in mains
                assert {truth.node_main[n] for n in nodes} == {row["user_main_id"]}


def test_main_id_is_hash_of_earliest_member(truth: et.Truth) -> None:
    for main, group in truth.id_graph.groupby("user_main_id"):
        assert re.fullmatch(r"rid[0-9a-f]{32}", str(main))
        hashes = [et.rudder_id(i, t) for i, t in zip(group["other_id"], group["other_id_type"], strict=True)]
        earliest = group["first_seen_at"].min()
        candidates = sorted(h for h, ts in zip(hashes, group["first_seen_at"], strict=True) if ts == earliest)
        assert main == candidates[0]


def test_population_mix(truth: et.Truth) -> None:
    vt = truth.var_table
    assert ((vt["page_views"] > 0) & vt["first_seen_at"].isna() & (vt["order_count"] == 0)).any()  # pages only
    assert (vt["distinct_devices"] >= 2).any()
    assert (vt["distinct_devices"] == 0).any()  # tracked server-side only
    assert ((vt["order_count"] == 0) & vt["latest_email"].notna()).any()  # signed up, never ordered
    cancelled_only = {
        r["user_main_id"] for r in truth.inputs["orders"] if r["user_main_id"] and r["status"] != "completed"
    } - {r["user_main_id"] for r in truth.inputs["orders"] if r["status"] == "completed"}
    assert cancelled_only and (vt.set_index("user_main_id").loc[sorted(cancelled_only), "order_count"] == 0).all()


def test_cohort(truth: et.Truth) -> None:
    assert truth.high_value and len(truth.high_value) < len(truth.var_table)
    exact = truth.total_revenue_exact
    assert truth.high_value == {e for e, total in exact.items() if total >= 300}
    assert any(total == Decimal("300.00") for e, total in exact.items() if e in truth.high_value)
    assert any(total == Decimal("299.99") for total in exact.values())
    hv = truth.high_value_feature_view
    assert set(hv["user_main_id"]) == truth.high_value
    assert list(hv.columns) == ["user_main_id", "hv_max_order_amount", *et.FEATURES]
    assert (hv["hv_max_order_amount"] <= hv["total_revenue"] + 1e-9).all()
    assert list(truth.feature_view.columns) == ["user_main_id", *sorted(et.FEATURES)]


# --------------------------------------------------------------------------- second computation


def _raw_frames() -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(DATA / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""]) for name in et.INPUTS
    }


def _ids_closure(frames: dict[str, pd.DataFrame], seed: tuple[str, str]) -> dict[str, set[str]]:
    """Grow an id set by repeatedly taking every row touching it (vectorised, no union-find)."""
    norm = {}
    for name, df in frames.items():
        cols = {}
        if "anonymous_id" in df and name != "orders":
            anon = df["anonymous_id"]
            cols["anonymous_id"] = anon.where(~anon.fillna("").str.fullmatch(r"undefined|null|unknown|test.*"))
        if "user_id" in df:
            cols["user_id"] = df["user_id"].where(df["user_id"] != "0")
        if "email" in df:
            email = df["email"].str.strip(" ").str.lower()
            ok = email.fillna("").str.fullmatch(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}") & (
                email != "noreply@example.com"
            )
            cols["email"] = email.where(ok)
        norm[name] = pd.DataFrame(cols)
    known: dict[str, set[str]] = {
        "anonymous_id": set(),
        "user_id": set(),
        "email": set(),
    }
    known[seed[0]].add(seed[1])
    while True:
        before = sum(map(len, known.values()))
        for ids in norm.values():
            hit = pd.concat([ids[c].isin(known[c]) for c in ids.columns], axis=1).any(axis=1)
            for c in ids.columns:
                known[c] |= set(ids.loc[hit, c].dropna())
        if sum(map(len, known.values())) == before:
            return known


def _picks(truth: et.Truth) -> list[et.Node]:
    """Hand-picked users: longest chain end, biggest high-value cluster, the 300.00 buyer, a visitor."""
    chain_end = _longest_chain(truth)[-1]
    graph = truth.id_graph
    sizes = graph[graph["user_main_id"].isin(truth.high_value)].groupby("user_main_id").size()
    biggest = graph[graph["user_main_id"] == sizes.sort_values(kind="stable").index[-1]].iloc[0]
    exact300 = next(e for e, t in sorted(truth.total_revenue_exact.items()) if t == Decimal("300.00"))
    row300 = graph[graph["user_main_id"] == exact300].iloc[0]
    vt = truth.var_table
    visitor = vt.loc[vt["first_seen_at"].isna() & (vt["page_views"] > 0), "user_main_id"].iloc[0]
    row_visitor = graph[graph["user_main_id"] == visitor].iloc[0]
    return [
        chain_end,
        (biggest["other_id_type"], biggest["other_id"]),
        (row300["other_id_type"], row300["other_id"]),
        (row_visitor["other_id_type"], row_visitor["other_id"]),
    ]


def test_hand_picked_users_recomputed_from_csvs(truth: et.Truth) -> None:
    frames = _raw_frames()
    vt = truth.var_table.set_index("user_main_id")
    for seed in _picks(truth):
        ids = _ids_closure(frames, seed)
        main = truth.node_main[seed]
        graph_nodes = truth.id_graph[truth.id_graph["user_main_id"] == main]
        assert {(t, i) for t, i in zip(graph_nodes["other_id_type"], graph_nodes["other_id"], strict=True)} == {
            (t, i) for t, values in ids.items() for i in values
        }
        pages = frames["pages"]
        assert vt.loc[main, "page_views"] == pages["anonymous_id"].isin(ids["anonymous_id"]).sum()

        orders = frames["orders"]
        mine = orders["user_id"].isin(ids["user_id"]) | orders["email"].str.strip(" ").str.lower().isin(ids["email"])
        done = orders[mine & (orders["status"] == "completed")]
        revenue = sum((Decimal(a) for a in done["amount"]), Decimal(0))
        assert vt.loc[main, "order_count"] == len(done)
        assert vt.loc[main, "total_revenue"] == pytest.approx(float(revenue), abs=1e-9)
        assert (main in truth.high_value) == (revenue >= 300)

        tracks = frames["tracks"]
        mine_t = tracks["anonymous_id"].isin(ids["anonymous_id"]) | tracks["user_id"].isin(ids["user_id"])
        if mine_t.any():
            assert vt.loc[main, "last_seen_at"] == pd.Timestamp(tracks.loc[mine_t, "timestamp"].max())
            assert vt.loc[main, "distinct_devices"] == tracks.loc[mine_t, "anonymous_id"].nunique()
        else:
            assert pd.isna(vt.loc[main, "last_seen_at"]) and pd.isna(vt.loc[main, "distinct_devices"])


# --------------------------------------------------------------------------- loading + YAML mirror


def test_duckdb_loading_matches_truth_reader(truth: et.Truth) -> None:
    import duckdb

    loading = _load_module("example_loading", PROJECT / "loading.py")
    con = duckdb.connect()
    counts = loading.load_raw(con, DATA)
    assert counts == {name: len(rows) for name, rows in truth.inputs.items()}
    for name in loading.RAW_TABLES:
        cols = et.INPUT_COLUMNS[name]
        order_key = cols[0]
        got = con.execute(
            f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM raw.{name} ORDER BY 1"
        ).fetchall()
        want = sorted((tuple(r[c] for c in cols) for r in truth.inputs[name]), key=lambda t: t[0])
        assert got == want, f"{name} ({order_key})"
    ((zero, padded),) = con.execute(
        "SELECT count(*) FILTER (WHERE user_id = '0'), count(*) FILTER (WHERE email LIKE ' %') FROM raw.identifies"
    ).fetchall()
    assert zero > 0 and padded > 0


def test_mirrored_constants_match_yaml() -> None:
    import yaml

    project = yaml.safe_load((PROJECT / "pb_project.yaml").read_text())
    filters = {
        t["name"]: tuple(
            (
                f["type"],
                "regex" if "regex" in f else "value",
                f.get("regex", f.get("value")),
            )
            for f in t.get("filters", [])
        )
        for t in project["id_types"]
    }
    assert filters == et.ID_TYPE_FILTERS
    inputs = yaml.safe_load((PROJECT / "models" / "inputs.yaml").read_text())["inputs"]
    ids = {i["name"]: tuple((e["select"], e["type"]) for e in i["app_defaults"]["ids"]) for i in inputs}
    assert ids == et.INPUT_IDS
    profiles = yaml.safe_load((PROJECT / "models" / "profiles.yaml").read_text())
    user_vars = [
        v["entity_var"]
        for g in profiles["var_groups"]
        if g["name"] in ("user_activity", "user_orders")
        for v in g["vars"]
        if "entity_var" in v
    ]
    assert tuple(v["name"] for v in user_vars) == et.VAR_COLUMNS
    assert set(et.FEATURES) == {v["name"] for v in user_vars if v.get("is_feature", True)}
