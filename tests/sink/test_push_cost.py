"""A push costs what the export costs: one listing scan (the refresh), no second one.

100 rows into a 20,000-contact tenant whose mirror is fresh: the refresh is one incremental
sync (the API has no filter, so one scan of the listing), then one keyed ``POST /contacts`` per
new row (its answer carries the id) and one PATCH per changed row. The old push synced and
read the whole tenant twice (before planning and again after writing); the one before this
sent the new rows in bulk and then searched for each of them to learn its id (⌈new/100⌉ + new
requests where new suffice).

Learning the created ids costs at most min(one search per created row, one listing scan):
1,500 new rows into a 300-contact tenant learn them from one scan (18 pages), not from 1,500
searches.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.sink import push_dataframe
from pipelines.sink.cost import bulk_requests, create_way
from pipelines.source.runner import SyncSettings, run_sync

TENANT_SIZE = 20_000
NEW, CHANGED, UNCHANGED = 60, 30, 10
PAGE = 100


def _kind(entry: dict[str, object]) -> str:
    path, method = str(entry["path"]), entry["method"]
    if path.endswith("/search"):
        return "search"
    if path.endswith("/bulk"):
        return "bulk"
    if method == "GET" and path.rstrip("/").endswith("/contacts"):
        return "list"
    return f"{method} one"


def test_100_row_push_into_20k_tenant_scans_once(sb: SandboxServer, tmp_path: Path) -> None:
    sb.admin.seed("acme", TENANT_SIZE, seed=41)
    key = sb.keys["acme"]["rw"]
    db = tmp_path / "w.duckdb"
    run_sync(SyncSettings(base_url=sb.base_url, api_key=key, duckdb_path=db, create_views=False))

    stored = [c for c in sb.admin.contacts("acme") if c["email"]][: CHANGED + UNCHANGED]
    rows = [
        {"first_name": c["first_name"], "email": c["email"], "company": f"Changed {i}"}
        for i, c in enumerate(stored[:CHANGED])
    ]
    rows += [{"first_name": c["first_name"], "email": c["email"]} for c in stored[CHANGED:]]
    rows += [{"first_name": f"New{i}", "email": f"new{i}@cost.test"} for i in range(NEW)]
    sb.admin.clear_requests()

    report = push_dataframe(
        pd.DataFrame(rows, dtype=object),
        base_url=sb.base_url,
        api_key=key,
        mapping="lynkist",
        duckdb_path=db,
    )

    assert report.ok, report.summary
    outcomes = Counter(report.results["outcome"])
    assert outcomes == {"created": NEW, "updated": CHANGED, "unchanged": UNCHANGED}
    kinds = Counter(_kind(e) for e in sb.admin.requests())
    one_scan = math.ceil(TENANT_SIZE / PAGE)
    assert kinds["list"] <= one_scan, f"more than one listing scan: {kinds}"
    # 60 singles < 1 bulk call + 60 searches (< 1 bulk call + a 201-page scan)
    assert report.summary["create_way"] == "single"
    assert kinds["POST one"] == NEW and kinds["bulk"] == 0
    assert kinds["PATCH one"] == CHANGED
    assert kinds["search"] == 0 and report.summary["lookup"] == "none", kinds
    assert set(kinds) <= {"list", "POST one", "PATCH one"}, kinds
    created = report.results[report.results["outcome"] == "created"]
    assert created["contact_id"].notna().all(), "created ids not learned"
    by_email = {c["email"]: c["id"] for c in sb.admin.contacts("acme")}
    for row in created.itertuples():
        assert by_email[str(row.match_key)] == row.contact_id


SMALL_TENANT, MANY_NEW = 300, 1_500


@pytest.mark.parametrize("refresh", [True, False], ids=["refresh", "no-refresh"])
def test_many_creates_learn_their_ids_from_one_scan_not_a_search_each(
    sb: SandboxServer, tmp_path: Path, refresh: bool
) -> None:
    sb.admin.seed("acme", SMALL_TENANT, seed=7)
    key = sb.keys["acme"]["rw"]
    db = tmp_path / "w.duckdb"
    run_sync(SyncSettings(base_url=sb.base_url, api_key=key, duckdb_path=db, create_views=False))
    rows = [{"first_name": f"New{i}", "email": f"new{i}@many.test"} for i in range(MANY_NEW)]
    sb.admin.clear_requests()

    report = push_dataframe(
        pd.DataFrame(rows, dtype=object),
        base_url=sb.base_url,
        api_key=key,
        mapping="lynkist",
        duckdb_path=db,
        refresh=refresh,
    )

    assert report.ok, report.summary
    assert Counter(report.results["outcome"]) == {"created": MANY_NEW}
    kinds = Counter(_kind(e) for e in sb.admin.requests())
    assert kinds["bulk"] == math.ceil(MANY_NEW / PAGE)
    scan = math.ceil((SMALL_TENANT + MANY_NEW) / PAGE)
    refresh_scan = math.ceil(SMALL_TENANT / PAGE) if refresh else 0
    # one scan to learn the ids (plus the refresh's, and a few confirmations of a sync)
    assert kinds["search"] + kinds["list"] + kinds["GET one"] <= refresh_scan + scan + 5, kinds
    assert kinds["search"] == 0, kinds
    assert report.summary["lookup"] == "scan"
    created = report.results
    assert created["contact_id"].notna().all(), "created ids not learned"
    by_email = {c["email"]: c["id"] for c in sb.admin.contacts("acme")}
    for row in created.itertuples():
        assert by_email[str(row.match_key)] == row.contact_id

    sb.admin.clear_requests()
    again = push_dataframe(
        pd.DataFrame(rows, dtype=object),
        base_url=sb.base_url,
        api_key=key,
        mapping="lynkist",
        duckdb_path=db,
        refresh=False,
    )
    assert Counter(again.results["outcome"]) == {"unchanged": MANY_NEW}
    assert not [e for e in sb.admin.requests() if _kind(e) in ("bulk", "PATCH one")]


@pytest.mark.parametrize(
    ("creates", "tenant", "way"),
    [
        (50, 200_000, "single"),  # 50 requests < 1 bulk + 50 searches (a scan: 2,001 pages)
        (100, 200_000, "single"),
        (5_000, 10_000, "bulk"),  # 50 bulk + a 150-page scan < 5,000 singles
        (1_500, 300, "bulk"),
        (1, 0, "single"),  # 1 < 1 bulk + 1 search
        (150, 0, "bulk"),  # 2 bulk + a 2-page scan
        (100, None, "bulk"),  # tenant unknown: bulk, whose cost does not grow with it
    ],
)
def test_create_way_takes_the_fewer_requests(creates: int, tenant: int | None, way: str) -> None:
    assert create_way(creates, tenant) == way
    if tenant is not None:
        bulk = bulk_requests(creates, tenant)
        assert (creates <= bulk) == (way == "single")
        # singles never cost more than bulk calls plus a search per row
        assert creates <= math.ceil(creates / PAGE) + creates
