"""``lynkist listen`` as a subprocess against the sandbox, over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH
from pipelines.webhooks import sign
from tests.listen.helpers import (
    SECRET,
    deliver,
    event_body,
    free_port,
    listening,
    query,
    wait_applied,
)
from tests.sync.helpers import assert_warehouse_matches_server


def _api(sb: SandboxServer) -> httpx.Client:
    return httpx.Client(
        base_url=sb.base_url + API_BASE_PATH,
        headers={"Authorization": f"Bearer {sb.keys['acme']['rw']}"},
        timeout=30,
        trust_env=False,
    )


def _gets(sb: SandboxServer) -> int:
    return sum(1 for r in sb.admin.requests() if r["method"] == "GET" and r["path"].count("/") > 4)


def test_rejects_bad_signatures_and_oversized_bodies_acknowledges_duplicates(
    sb: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    with _api(sb) as api:
        contact = api.post("", json={"first_name": "Ada"}).json()
    body = event_body("contact.created", contact)
    with listening(sb, db, free_port()) as listener:
        assert deliver(listener, body, secret="another-secret").status_code == 400
        stale = int(time.time()) - 3600
        assert deliver(listener, body, timestamp=stale).status_code == 400
        unsigned = httpx.post(f"{listener.base}/webhooks/lynkist", content=body, trust_env=False)
        assert unsigned.status_code == 400
        tampered = httpx.post(
            f"{listener.base}/webhooks/lynkist",
            content=body.replace(b'"Ada"', b'"Eve"'),
            headers={"Lynkist-Signature": sign(body, SECRET)},
            trust_env=False,
        )
        assert tampered.status_code == 400
        first = deliver(listener, body)
        assert first.status_code == 200 and first.json()["status"] == "stored"
        again = deliver(listener, body)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        huge = event_body("contact.created", {**contact, "notes": "x" * (2 * 1024 * 1024)})
        assert deliver(listener, huge).status_code == 413
        wait_applied(listener, 1)
        health = listener.health()
        assert health["stored"] == 1 and health["duplicates"] == 1
        assert health["rejected"] == 4 and health["oversized"] == 1
        assert health["last_flush"] is not None
        assert listener.stop() == 0
    rows = query(db, "SELECT event_id, event, contact_id FROM contact_events")
    assert rows == [(json.loads(body)["id"], "contact.created", contact["id"])]
    assert query(db, "SELECT first_name FROM contacts") == [("Ada",)]


def _history(sb: SandboxServer) -> tuple[dict[str, Any], list[bytes]]:
    """A contact created, updated twice and archived; the four events, oldest first."""
    with _api(sb) as api:
        created = api.post("", json={"first_name": "v1", "email": "a@example.com"}).json()
        v2 = api.patch(f"/{created['id']}", json={"first_name": "v2"}).json()
        v3 = api.patch(f"/{created['id']}", json={"first_name": "v3"}).json()
        kept = api.post("", json={"first_name": "k1"}).json()
        kept2 = api.patch(f"/{kept['id']}", json={"first_name": "k2"}).json()
        assert api.delete(f"/{created['id']}").status_code in (200, 204)
    deleted_at = sb.admin.contacts()[0]["archived_at"] or v3["updated_at"]
    events = [
        event_body("contact.created", created),
        event_body("contact.updated", v2),
        event_body("contact.updated", v3),
        event_body("contact.deleted", v3, occurred_at=deleted_at),
        event_body("contact.created", kept),
        event_body("contact.updated", kept2),
    ]
    return kept2, events


@pytest.mark.parametrize("trust", [False, True], ids=["fetch", "trust-payload"])
def test_out_of_order_updates_and_deletes_never_leave_an_older_state(
    sb: SandboxServer, tmp_path: Path, trust: bool
) -> None:
    db = tmp_path / "w.duckdb"
    kept, events = _history(sb)
    sb.admin.clear_requests()
    extra = ("--trust-payload",) if trust else ()
    with listening(sb, db, free_port(), "--flush-interval", "30", *extra) as listener:
        # newest first, each twice: the worst order a retrying sender can produce
        for body in [*reversed(events), *events]:
            assert deliver(listener, body).status_code == 200
        assert listener.health()["queue_depth"] == len(events)
        assert listener.stop() == 0  # the final flush applies the batch
    flush = [line for line in listener.lines if line["event"] == "flush"]
    assert sum(line["events"] for line in flush) == len(events)
    assert_warehouse_matches_server(db, sb)
    assert query(db, f"SELECT first_name FROM contacts WHERE id = '{kept['id']}'") == [("k2",)]
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM contact_events") == [(6, 6)]
    # fetch mode: one GET per contact however many events; trust mode: no API call at all
    assert _gets(sb) == (0 if trust else 2)
