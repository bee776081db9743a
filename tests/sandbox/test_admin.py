"""The admin API (/_sandbox): request log, faults, settings, clock, scan hooks, seed, reset."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH
from tests.sandbox.conftest import create

ADMIN_ROUTES = [
    ("GET", "/requests"),
    ("DELETE", "/requests"),
    ("PUT", "/faults"),
    ("PUT", "/settings"),
    ("PUT", "/clock"),
    ("POST", "/scan-hooks"),
    ("POST", "/seed"),
    ("POST", "/plant"),
    ("GET", "/contacts"),
    ("POST", "/reset"),
    ("GET", "/webhooks"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong", "API_KEY"])
def test_admin_needs_the_admin_token(
    sb: SandboxServer, raw: httpx.Client, method: str, path: str, token: str | None
) -> None:
    headers = {}
    if token == "API_KEY":
        headers["X-Sandbox-Admin"] = sb.keys["acme"]["rw"]
    elif token:
        headers["X-Sandbox-Admin"] = token
    response = raw.request(method, "/_sandbox" + path, headers=headers, json={})
    assert response.status_code == 401


def test_request_log_records_every_api_request(sb: SandboxServer, client: httpx.Client) -> None:
    contact = create(client)
    client.get("", params={"page": 1, "limit": 5})
    client.get(f"/{contact['id']}x")
    log = sb.admin.requests()
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in log] == [
        ("POST", API_BASE_PATH, "", 201),
        ("GET", API_BASE_PATH, "page=1&limit=5", 200),
        ("GET", f"{API_BASE_PATH}/{contact['id']}x", "", 404),
    ]
    assert all(e["tenant"] == "acme" and e["fault"] is None for e in log)
    seqs = [e["seq"] for e in log]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert all(datetime.fromisoformat(e["at"]) <= datetime.now(UTC) for e in log)
    sb.admin.clear_requests()
    assert sb.admin.requests() == []


def test_admin_and_docs_are_not_logged(sb: SandboxServer, raw: httpx.Client) -> None:
    raw.get("/openapi.json")
    sb.admin.contacts()
    assert sb.admin.requests() == []


@pytest.mark.parametrize(
    ("fields", "status", "fault"),
    [({"error_5xx": 1.0}, {500, 502, 503}, "5xx"), ({"error_429": 1.0}, {429}, "429")],
)
def test_faults_set_live_are_logged_and_write_nothing(
    sb: SandboxServer, client: httpx.Client, fields: dict[str, float], status: set[int], fault: str
) -> None:
    sb.admin.set_faults(**fields, seed=1)
    for _ in range(6):
        assert client.post("", json={"first_name": "X"}).status_code in status
    assert {e["fault"] for e in sb.admin.requests()} == {fault}
    sb.admin.set_faults()
    assert client.post("", json={"first_name": "X"}).status_code == 201
    assert len(sb.admin.contacts("acme")) == 1


def test_dropped_connections_are_logged(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.set_faults(drop=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("")
    sb.admin.set_faults(drop_after_commit=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("", json={"first_name": "Committed"})
    sb.admin.set_faults()
    log = sb.admin.requests()
    assert [(e["fault"], e["status"]) for e in log] == [
        ("drop", None),
        ("drop_after_commit", 201),
    ]
    assert [c["first_name"] for c in sb.admin.contacts("acme")] == ["Committed"]


def test_bad_fault_spec_is_422(sb: SandboxServer) -> None:
    for bad in ({"error_5xx": 2}, {"nope": 1}, {"drop": "x"}):
        with pytest.raises(httpx.HTTPStatusError) as info:
            sb.admin.set_faults(**bad)
        assert info.value.response.status_code == 422


def test_latency_is_added_live(sb: SandboxServer, client: httpx.Client) -> None:
    # generous margins: on a shared 2-core machine a plain request can take 100 ms
    sb.admin.set_settings(latency_ms=500)
    start = time.perf_counter()
    client.get("")
    assert time.perf_counter() - start >= 0.5
    sb.admin.set_settings(latency_ms=0)
    start = time.perf_counter()
    client.get("")
    assert time.perf_counter() - start < 0.5


def test_latency_does_not_block_other_requests(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.set_settings(latency_ms=500)

    def slow() -> None:
        client.get("")

    threads = [threading.Thread(target=slow) for _ in range(6)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - start < 2.0  # 6 × 500 ms would be 3 s if blocking


@pytest.mark.parametrize(
    ("style", "check"),
    [
        ("seconds", lambda v: v is not None and v.isdigit() and int(v) >= 1),
        ("http-date", lambda v: v is not None and v.endswith("GMT")),
        ("none", lambda v: v is None),
    ],
)
def test_rate_limit_set_live(
    sb: SandboxServer, client: httpx.Client, style: str, check: Callable[[str | None], bool]
) -> None:
    sb.admin.set_settings(rate_limit=0.5, burst=2, retry_after=style)
    statuses = [client.get("").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("")
    assert limited.status_code == 429
    assert check(limited.headers.get("retry-after"))
    assert sb.admin.requests()[-1]["fault"] == "rate_limited"
    # Another key has its own bucket.
    other = httpx.get(
        sb.base_url + API_BASE_PATH, headers={"Authorization": f"Bearer {sb.keys['acme']['ro']}"}
    )
    assert other.status_code == 200
    sb.admin.set_settings(rate_limit=None)
    assert client.get("").status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"latency_ms": -1},
        {"retry_after": "weekly"},
        {"rate_limit": 0},
        {"burst": 0, "rate_limit": 1},
        {"x": 1},
    ],
)
def test_bad_settings_are_422_and_change_nothing(sb: SandboxServer, bad: dict[str, object]) -> None:
    before = sb.admin.settings()
    with pytest.raises(httpx.HTTPStatusError) as info:
        sb.admin.set_settings(**bad)
    assert info.value.response.status_code == 422
    assert sb.admin.settings() == before


def test_clock_offset_dates_writes(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.set_clock_offset(-3600)
    contact = create(client)
    created = datetime.fromisoformat(contact["created_at"])
    assert abs((datetime.now(UTC) - timedelta(hours=1) - created).total_seconds()) < 60
    sb.admin.set_clock_offset(0)
    newer = create(client)
    # A late commit: listed after (older than) a contact written later on the real clock.
    sb.admin.set_clock_offset(-120)
    late = create(client)
    sb.admin.set_clock_offset(0)
    order = [c["id"] for c in client.get("").json()["data"]]
    assert order == [newer["id"], late["id"], contact["id"]]
    patched = client.patch(f"/{contact['id']}", json={"status": "x"}).json()
    assert patched["updated_at"] > newer["created_at"]


def test_scan_hook_runs_once_after_the_page(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.seed("acme", 30)
    page1 = client.get("", params={"page": 1, "limit": 10}).json()["data"]
    victim = page1[3]["id"]
    sb.admin.add_scan_hook(
        "acme",
        1,
        [
            {"op": "create", "contact": {"first_name": "Inserted"}},
            {"op": "update", "id": page1[0]["id"], "fields": {"status": "hooked"}},
            {"op": "archive", "id": victim},
        ],
    )
    client.get("", params={"page": 2, "limit": 10})  # not the hooked page: nothing happens
    assert len(sb.admin.contacts("acme")) == 30
    again1 = client.get("", params={"page": 1, "limit": 10}).json()["data"]
    assert [c["id"] for c in again1] == [c["id"] for c in page1]  # answered before the ops
    truth = {c["id"]: c for c in sb.admin.contacts("acme")}
    assert len(truth) == 31
    assert truth[page1[0]["id"]]["status"] == "hooked"
    assert truth[victim]["archived_at"] is not None
    # Page 2 shifted: one insert at the front, one removal on page 1 → same net position.
    now1 = client.get("", params={"page": 1, "limit": 10}).json()["data"]
    assert now1[0]["first_name"] == "Inserted"
    # Fired once only.
    client.get("", params={"page": 1, "limit": 10})
    assert len(sb.admin.contacts("acme")) == 31


def test_scan_hook_on_search_and_other_tenant(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.add_scan_hook("globex", 1, [{"op": "create", "contact": {"first_name": "G"}}])
    client.post("/search", json={})  # acme: not globex's hook
    assert sb.admin.contacts("globex") == []
    globex = httpx.post(
        sb.base_url + API_BASE_PATH + "/search",
        json={"status": "none"},
        headers={"Authorization": f"Bearer {sb.keys['globex']['ro']}"},
    )
    assert globex.status_code == 200
    assert [c["first_name"] for c in sb.admin.contacts("globex")] == ["G"]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "create", "contact": {"first_name": ""}}],
        [{"op": "update", "fields": {"status": "x"}}],
        [{"op": "archive"}],
        [{"op": "explode"}],
    ],
)
def test_invalid_scan_hooks_are_422(sb: SandboxServer, ops: list[dict[str, Any]]) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        sb.admin.add_scan_hook("acme", 1, ops)
    assert info.value.response.status_code == 422


def test_seed_and_ground_truth(sb: SandboxServer, client: httpx.Client) -> None:
    assert sb.admin.seed("acme", 200, seed=9, updated_share=0.5) == 200
    truth = sb.admin.contacts("acme")
    assert len(truth) == 200
    never_updated = sum(c["updated_at"] is None for c in truth)
    assert 50 < never_updated < 150
    assert all(c["archived_at"] is None for c in truth)
    now = datetime.now(UTC)
    assert all(datetime.fromisoformat(c["created_at"]) <= now for c in truth)
    # Served exactly as the ground truth says.
    first = client.get(f"/{truth[0]['id']}").json()
    assert first == {k: v for k, v in truth[0].items() if k != "archived_at"}
    # Same seed again: same ids, nothing duplicated.
    assert sb.admin.seed("acme", 200, seed=9, updated_share=0.5) == 0
    assert sb.admin.seed("globex", 10, seed=9) == 10


def test_seed_unknown_tenant_is_422(sb: SandboxServer) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        sb.admin.seed("initech", 5)


def test_reset_wipes_everything(sb: SandboxServer, client: httpx.Client) -> None:
    create(client)
    sb.admin.add_scan_hook("acme", 1, [{"op": "create", "contact": {"first_name": "H"}}])
    sb.admin.reset()
    assert sb.admin.contacts("acme") == [] and sb.admin.requests() == []
    client.get("")
    assert sb.admin.contacts("acme") == []  # the hook was dropped too
    assert sb.admin.webhook_deliveries() == []


def test_planted_records_are_served_exactly_as_given(
    sb: SandboxServer, client: httpx.Client
) -> None:
    """Validation bypassed: a lone surrogate (escaped on the wire), odd timestamps, new fields."""
    odd = {"first_name": "A\ud83d", "tags": ["\udc00"], "updated_at": 1767225600, "Lead Score": 3}
    [contact_id] = sb.admin.plant([odd])
    got = client.get(f"/{contact_id}")
    assert got.status_code == 200 and b"\\ud83d" in got.content  # escaped, valid UTF-8
    assert got.json() == {**odd, "id": contact_id, "created_at": got.json()["created_at"]}
    [listed] = client.get("", params={"limit": 10}).json()["data"]
    assert listed == got.json()
    assert sb.admin.contacts()[0]["first_name"] == "A\ud83d"
    # same id again: replaced, so a test can repair a record
    sb.admin.plant([{"id": contact_id, "first_name": "Fixed"}])
    assert client.get(f"/{contact_id}").json()["first_name"] == "Fixed"
    assert len(sb.admin.contacts()) == 1
