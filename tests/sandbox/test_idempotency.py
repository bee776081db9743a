"""Contract: Idempotency-Key on POST /contacts (Stripe semantics), and events on writes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxConfig, SandboxServer
from tests.sandbox.conftest import ApiFactory, api_client

BODY = {"first_name": "Anurag", "email": "anurag@acme.test", "tags": ["india"]}


def test_same_key_same_body_replays_the_first_answer(
    sb: SandboxServer, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "7c4d2e1a-0001"}
    first = client.post("", json=BODY, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    client.patch(f"/{first.json()['id']}", json={"status": "customer"})
    again = client.post("", json=BODY, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the stored answer, not the contact's current state
    assert len(sb.admin.contacts("acme")) == 1


def test_key_order_and_whitespace_do_not_make_a_different_body(
    sb: SandboxServer, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "k-order", "content-type": "application/json"}
    first = client.post("", content=b'{"first_name":"A","last_name":"B"}', headers=headers)
    second = client.post("", content=b'{ "last_name": "B",  "first_name": "A" }', headers=headers)
    assert second.json()["id"] == first.json()["id"]
    assert len(sb.admin.contacts("acme")) == 1


@pytest.mark.parametrize(
    "other",
    [
        {**BODY, "first_name": "Other"},
        {**BODY, "tags": ["india", "x"]},
        {"first_name": "Anurag"},
        {**BODY, "company": None},
    ],
)
def test_same_key_different_body_is_422(
    sb: SandboxServer, client: httpx.Client, other: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "k-conflict"}
    client.post("", json=BODY, headers=headers)
    response = client.post("", json=other, headers=headers)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert len(sb.admin.contacts("acme")) == 1


def test_different_keys_create_different_contacts(sb: SandboxServer, client: httpx.Client) -> None:
    a = client.post("", json=BODY, headers={"Idempotency-Key": "a"}).json()
    b = client.post("", json=BODY, headers={"Idempotency-Key": "b"}).json()
    c = client.post("", json=BODY).json()
    assert len({a["id"], b["id"], c["id"]}) == 3


def test_keys_are_per_tenant(sb: SandboxServer, api: ApiFactory) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    acme = api("acme").post("", json=BODY, headers=headers)
    globex = api("globex").post("", json=BODY, headers=headers)
    assert acme.status_code == globex.status_code == 201
    assert acme.json()["id"] != globex.json()["id"]
    assert "idempotent-replayed" not in globex.headers
    assert api("globex").get(f"/{acme.json()['id']}").status_code == 404


def test_a_rejected_request_stores_nothing_under_its_key(
    sb: SandboxServer, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "fix-and-retry"}
    assert client.post("", json={"first_name": ""}, headers=headers).status_code == 422
    fixed = client.post("", json={"first_name": "Fixed"}, headers=headers)
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


def test_reset_forgets_keys(sb: SandboxServer, client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "before-reset"}
    first = client.post("", json=BODY, headers=headers).json()
    sb.admin.reset()
    second = client.post("", json=BODY, headers=headers).json()
    assert second["id"] != first["id"]


def test_concurrent_retries_with_one_key_create_one_contact(
    sb: SandboxServer, api_key: str
) -> None:
    answers: list[httpx.Response] = []

    def send() -> None:
        with api_client(sb) as http:
            answers.append(http.post("", json=BODY, headers={"Idempotency-Key": "racy"}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # each one either ran, replayed the first answer, or was told the key is in progress
    assert {a.status_code for a in answers} <= {201, 409}
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    assert len(sb.admin.contacts("acme")) == 1


def test_a_repeat_while_the_first_is_still_processing_is_409_then_replays(
    sb: SandboxServer, client: httpx.Client
) -> None:
    # The first request is held (queued) for 1.5 s before it commits; a repeat with its key
    # meanwhile must neither run (a duplicate) nor wait: a real server answers 409.
    sb.admin.set_faults(commit_delay_ms=1500)
    headers = {"Idempotency-Key": "held"}
    answers: list[httpx.Response] = []
    first = threading.Thread(
        target=lambda: answers.append(client.post("", json=BODY, headers=headers))
    )
    first.start()
    with api_client(sb) as other:
        repeat = other.post("", json=BODY, headers=headers)
        first.join()
        (created,) = answers
        # whichever arrived second is the repeat
        statuses = sorted([created.status_code, repeat.status_code])
        assert statuses == [201, 409]
        refused = repeat if repeat.status_code == 409 else created
        assert "still being processed" in refused.json()["detail"]
        done = created if created.status_code == 201 else repeat
        sb.admin.set_faults()
        again = other.post("", json=BODY, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == done.json()["id"]
    assert len(sb.admin.contacts("acme")) == 1


def test_keys_expire_after_the_configured_time() -> None:
    with SandboxServer(SandboxConfig(idempotency_ttl_s=1)) as server, api_client(server) as http:
        headers = {"Idempotency-Key": "short-lived"}
        first = http.post("", json=BODY, headers=headers).json()
        assert http.post("", json=BODY, headers=headers).json()["id"] == first["id"]
        time.sleep(1.1)
        assert http.post("", json=BODY, headers=headers).json()["id"] != first["id"]


def test_keys_are_kept_24_hours_by_default() -> None:
    assert SandboxConfig().idempotency_ttl_s >= 24 * 3600


# -- webhooks: one event per real write, none for a replay --------------------------------


class _Receiver(BaseHTTPRequestHandler):
    events: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.events.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hooked() -> Iterator[tuple[SandboxServer, list[dict[str, Any]]]]:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    events: list[dict[str, Any]] = []
    receiver.events = events  # type: ignore[attr-defined]
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with SandboxServer(SandboxConfig(webhook_urls=[url])) as server:
            yield server, events
    finally:
        receiver.shutdown()
        receiver.server_close()


def _events(server: SandboxServer, events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    assert server.state is not None
    assert server.state.webhooks.flush(10)
    return [(e["event"], e["data"]["id"]) for e in events]


def test_each_write_emits_one_event_and_a_replay_none(
    hooked: tuple[SandboxServer, list[dict[str, Any]]],
) -> None:
    server, events = hooked
    events.clear()
    with api_client(server) as http:
        headers = {"Idempotency-Key": "hooked-1"}
        contact = http.post("", json=BODY, headers=headers).json()
        http.post("", json=BODY, headers=headers)  # replay: no second event
        http.patch(f"/{contact['id']}", json={"status": "customer"})
        http.patch(f"/{contact['id']}", json={})  # no change: no event
        http.delete(f"/{contact['id']}")
        http.delete(f"/{contact['id']}")  # 404: no event
        bulk = http.post(
            "/bulk", json={"contacts": [{"first_name": "B1"}, {}, {"first_name": "B2"}]}
        )
        assert bulk.json()["created"] == 2
        http.get("")  # reads: no events
    # Two delivery threads: arrival order is not guaranteed, so compare as multisets.
    got = Counter(_events(server, events))
    mine = {(name, cid): n for (name, cid), n in got.items() if cid == contact["id"]}
    assert mine == {
        ("contact.created", contact["id"]): 1,
        ("contact.updated", contact["id"]): 1,
        ("contact.deleted", contact["id"]): 1,
    }
    others = Counter(name for (name, cid) in got.elements() if cid != contact["id"])
    assert others == {"contact.created": 2}
    created = next(e for e in events if e["event"] == "contact.created")
    assert created["tenant"] == "acme"
    assert created["data"] == contact
    updated = next(e for e in events if e["event"] == "contact.updated")
    assert updated["occurred_at"] == updated["data"]["updated_at"]
    assert {d["event"] for d in server.admin.webhook_deliveries()} >= {"contact.created"}


def test_a_lost_answer_is_recovered_by_retrying_with_the_key(
    sb: SandboxServer, client: httpx.Client
) -> None:
    sb.admin.set_faults(drop_after_commit=1.0)
    headers = {"Idempotency-Key": "lost-answer"}
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("", json=BODY, headers=headers)
    sb.admin.set_faults()
    (committed,) = sb.admin.contacts("acme")
    retry = client.post("", json=BODY, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == committed["id"]
    assert len(sb.admin.contacts("acme")) == 1
