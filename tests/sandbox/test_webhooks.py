"""Webhook dispatcher against a real HTTP receiver on loopback that verifies every delivery."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from lynkist_sandbox.webhooks import WebhookDispatcher
from pipelines.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    ReplayGuard,
    WebhookVerificationError,
    verify,
)
from tests.waiting import wait_until

SECRET = "whsec_sandbox_test_91ab"
CONTACT = {
    "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "first_name": "Zoé",
    "email": "zoe@acme.test",
    "tags": ["india"],
    "custom_fields": {"plan": "starter"},
}


class Receiver:
    """A user's webhook endpoint: verifies each delivery with the shipped helper.

    Answers 500 to the first ``fail_first`` requests, 400 to unverifiable ones, else 200;
    when ``hold`` is given, each request waits for it before answering (a slow receiver).
    """

    def __init__(
        self,
        *,
        fail_first: int = 0,
        hold: threading.Event | None = None,
        guard: ReplayGuard | None = None,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answered = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get(SIGNATURE_HEADER)
                try:
                    event: dict[str, Any] | None = verify(body, header, SECRET, replay_guard=guard)
                    error = None
                except WebhookVerificationError as exc:
                    event, error = None, str(exc)
                with receiver._lock:
                    index = len(receiver.requests)
                    receiver.requests.append(
                        {
                            "body": body,
                            "headers": dict(self.headers),
                            "event": event,
                            "error": error,
                        }
                    )
                if hold is not None:
                    hold.wait(10)
                status = 500 if index < fail_first else (200 if event is not None else 400)
                # counted before the bytes go out: the sender can see the answer (and a test
                # can assert on the count) the moment it is written
                with receiver._lock:
                    receiver.answered += 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def make(receivers: list[Receiver], **kwargs: Any) -> Receiver:
    receiver = Receiver(**kwargs)
    receivers.append(receiver)
    return receiver


def test_events_are_delivered_signed_and_verifiable(receivers: list[Receiver]) -> None:
    receiver = make(receivers)
    dispatcher = WebhookDispatcher([receiver.url], SECRET).start()
    try:
        for event in ("contact.created", "contact.updated", "contact.deleted"):
            dispatcher.emit(event, "acme", CONTACT)
        dispatcher.emit("contact.created", "globex", CONTACT, occurred_at="2026-05-12T08:00:00Z")
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert all(r["error"] is None for r in receiver.requests)
    events = sorted(
        (r["event"] for r in receiver.requests), key=lambda e: (e["tenant"], e["event"])
    )
    assert [(e["tenant"], e["event"]) for e in events] == [
        ("acme", "contact.created"),
        ("acme", "contact.deleted"),
        ("acme", "contact.updated"),
        ("globex", "contact.created"),
    ]
    for request in receiver.requests:
        event = request["event"]
        assert set(event) == {"id", "event", "tenant", "occurred_at", "data"}
        assert event["data"] == CONTACT
        assert request["headers"][EVENT_ID_HEADER] == event["id"]
        assert request["headers"]["Content-Type"] == "application/json"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", event["occurred_at"])
    assert events[-1]["occurred_at"] == "2026-05-12T08:00:00Z"
    log = dispatcher.deliveries
    assert len(log) == 4
    assert all(d["delivered"] and d["status"] == 200 and d["attempts"] == 1 for d in log)
    assert {d["id"] for d in log} == {e["id"] for e in events}


def test_every_url_gets_every_event(receivers: list[Receiver]) -> None:
    first, second = make(receivers), make(receivers)
    dispatcher = WebhookDispatcher([first.url, second.url], SECRET).start()
    try:
        dispatcher.emit("contact.created", "acme", CONTACT)
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert len(first.requests) == len(second.requests) == 1
    assert first.requests[0]["event"]["id"] == second.requests[0]["event"]["id"]


def test_failed_attempts_are_retried_with_a_fresh_signature(receivers: list[Receiver]) -> None:
    receiver = make(receivers, fail_first=2)
    dispatcher = WebhookDispatcher([receiver.url], SECRET, backoff_s=0.05).start()
    try:
        dispatcher.emit("contact.updated", "acme", CONTACT)
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert len(receiver.requests) == 3
    assert len({r["headers"][EVENT_ID_HEADER] for r in receiver.requests}) == 1
    assert all(r["error"] is None for r in receiver.requests)  # each attempt verifies
    assert dispatcher.deliveries == [
        {
            "id": receiver.requests[0]["event"]["id"],
            "event": "contact.updated",
            "tenant": "acme",
            "url": receiver.url,
            "status": 200,
            "attempts": 3,
            "delivered": True,
            "error": None,
        }
    ]


def test_gives_up_after_max_attempts(receivers: list[Receiver]) -> None:
    receiver = make(receivers, fail_first=100)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    dispatcher = WebhookDispatcher(
        [receiver.url, dead_url], SECRET, max_attempts=3, backoff_s=0.02
    ).start()
    try:
        dispatcher.emit("contact.deleted", "acme", CONTACT)
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert len(receiver.requests) == 3
    by_url = {d["url"]: d for d in dispatcher.deliveries}
    assert by_url[receiver.url]["attempts"] == 3
    assert not by_url[receiver.url]["delivered"]
    assert (by_url[receiver.url]["status"], by_url[receiver.url]["error"]) == (500, "HTTP 500")
    assert by_url[dead_url]["attempts"] == 3 and by_url[dead_url]["status"] is None
    assert "ConnectError" in by_url[dead_url]["error"]


def test_default_policy_is_five_attempts() -> None:
    assert WebhookDispatcher(["http://127.0.0.1:9/"], SECRET).max_attempts == 5


def test_a_slow_receiver_never_blocks_emit(receivers: list[Receiver]) -> None:
    hold = threading.Event()
    receiver = make(receivers, hold=hold)
    dispatcher = WebhookDispatcher([receiver.url], SECRET).start()
    try:
        dispatcher.emit("contact.created", "acme", CONTACT)
        # the receiver now sits on a request
        wait_until(lambda: len(receiver.requests) >= 1, "a request at the receiver", timeout=10)
        for _ in range(20):
            dispatcher.emit("contact.updated", "acme", CONTACT)
        # All 21 emits returned while the receiver had answered nothing.
        assert receiver.answered == 0
        hold.set()
        assert dispatcher.flush(10)
    finally:
        hold.set()
        dispatcher.stop()
    assert receiver.answered == 21
    assert sum(d["delivered"] for d in dispatcher.deliveries) == 21


def test_stop_is_quick_even_with_retries_pending(receivers: list[Receiver]) -> None:
    receiver = make(receivers, fail_first=100)
    before = set(threading.enumerate())
    dispatcher = WebhookDispatcher([receiver.url], SECRET, backoff_s=60).start()
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("lynkist-")]
    assert workers
    dispatcher.emit("contact.created", "acme", CONTACT)
    wait_until(lambda: receiver.answered >= 1, "an answered delivery", timeout=10)
    dispatcher.stop(timeout=5)
    # The workers left their 60 s backoff wait instead of sitting it out.
    assert not any(t.is_alive() for t in workers)
    [entry] = dispatcher.deliveries
    assert entry["attempts"] == 1 and not entry["delivered"]
    dispatcher.emit("contact.created", "acme", CONTACT)  # after stop: ignored, no error
    assert len(receiver.requests) == 1


def test_events_emitted_before_start_are_delivered_after(receivers: list[Receiver]) -> None:
    receiver = make(receivers)
    dispatcher = WebhookDispatcher([receiver.url], SECRET)
    dispatcher.emit("contact.created", "acme", CONTACT)
    assert receiver.requests == []
    dispatcher.start()
    try:
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert len(receiver.requests) == 1


def test_without_urls_nothing_runs() -> None:
    before = set(threading.enumerate())
    dispatcher = WebhookDispatcher([], SECRET).start()
    dispatcher.emit("contact.created", "acme", CONTACT)
    started = set(threading.enumerate()) - before
    assert not [t for t in started if t.name.startswith("lynkist-")]
    assert dispatcher.flush(1)
    dispatcher.stop()
    assert dispatcher.deliveries == []


def test_receiver_rejects_tampered_and_replayed_deliveries(receivers: list[Receiver]) -> None:
    receiver = make(receivers, guard=ReplayGuard())
    dispatcher = WebhookDispatcher([receiver.url], SECRET).start()
    try:
        dispatcher.emit("contact.updated", "acme", CONTACT)
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    [genuine] = receiver.requests
    assert genuine["error"] is None
    signature = genuine["headers"][SIGNATURE_HEADER]
    headers = {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
    tampered = json.loads(genuine["body"])
    tampered["data"]["email"] = "attacker@evil.test"
    with httpx.Client(timeout=5) as client:
        answers = [
            client.post(receiver.url, content=json.dumps(tampered).encode(), headers=headers),
            client.post(receiver.url, content=genuine["body"], headers=headers),  # replay
            client.post(receiver.url, content=genuine["body"]),  # no signature
            client.post(
                receiver.url,
                content=genuine["body"],
                headers={SIGNATURE_HEADER: signature.replace("v1=", "v1=0")},
            ),
        ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    errors = [r["error"] for r in receiver.requests[1:]]
    assert "signature mismatch" in errors[0]
    assert "already received" in errors[1]
    assert "missing" in errors[2]
    assert "signature mismatch" in errors[3]
    # A delivery captured and replayed after the tolerance window fails on its timestamp alone.
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify(genuine["body"], signature, SECRET, now=time.time() + 301)


def test_secret_stays_out_of_logs_and_repr(receivers: list[Receiver]) -> None:
    receiver = make(receivers, fail_first=1)
    dispatcher = WebhookDispatcher([receiver.url], SECRET, backoff_s=0.01).start()
    try:
        dispatcher.emit("contact.created", "acme", CONTACT)
        assert dispatcher.flush(10)
    finally:
        dispatcher.stop()
    assert SECRET not in repr(dispatcher)
    assert SECRET not in repr(dispatcher.deliveries)
    assert all(SECRET.encode() not in r["body"] for r in receiver.requests)


def test_notes_and_communications_are_recorded_and_delivered(receivers: list[Receiver]) -> None:
    from lynkist_sandbox import SandboxConfig, SandboxServer

    receiver = make(receivers)
    config = SandboxConfig(webhook_urls=[receiver.url], webhook_secret=SECRET)
    with SandboxServer(config) as sb:
        assert sb.state is not None
        key = sb.keys["acme"]["rw"]
        with httpx.Client(
            base_url=f"{sb.base_url}/api/v1/public", headers={"Authorization": f"Bearer {key}"}
        ) as api:
            contact = api.post("/contacts", json={"first_name": "Ada"}).json()
            note = sb.admin.add_note(contact["id"], "call back", author="ops")
            call = sb.admin.add_communication(
                contact["id"], channel="call", direction="inbound", subject="renewal"
            )
            api.delete(f"/contacts/{contact['id']}")
        with pytest.raises(httpx.HTTPStatusError) as gone:
            sb.admin.add_note(contact["id"], "too late")  # archived: no such live contact
        assert gone.value.response.status_code == 404
        with pytest.raises(httpx.HTTPStatusError) as bad:
            sb.admin.add_communication(contact["id"], channel="pigeon")
        assert bad.value.response.status_code == 422
        assert sb.state.webhooks.flush(10)
    events = {r["event"]["event"]: r["event"] for r in receiver.requests if r["event"]}
    assert set(events) == {
        "contact.created",
        "contact.note_added",
        "contact.communication_added",
        "contact.deleted",
    }
    assert events["contact.note_added"]["data"] == note
    assert note["id"] == contact["id"]
    assert note["note"]["body"] == "call back" and note["note"]["author"] == "ops"
    assert events["contact.communication_added"]["data"] == call
    assert call["communication"]["channel"] == "call"
    assert call["communication"]["subject"] == "renewal"


def test_bulk_updates_commit_and_emit_one_event_each(receivers: list[Receiver]) -> None:
    from lynkist_sandbox import SandboxConfig, SandboxServer

    receiver = make(receivers)
    config = SandboxConfig(webhook_urls=[receiver.url], webhook_secret=SECRET)
    with SandboxServer(config) as sb:
        assert sb.state is not None
        key = sb.keys["acme"]["rw"]
        with httpx.Client(
            base_url=f"{sb.base_url}/api/v1/public", headers={"Authorization": f"Bearer {key}"}
        ) as api:
            a, b = (api.post("/contacts", json={"first_name": n}).json() for n in ("A", "B"))
            api.delete(f"/contacts/{b['id']}")
            assert sb.state.webhooks.flush(10)
            receiver.requests.clear()
            committed = sb.admin.update_many(
                {a["id"]: {"job_title": "CTO"}, b["id"]: {"job_title": "gone"}}
            )
            assert api.get(f"/contacts/{a['id']}").json()["job_title"] == "CTO"
        assert committed == {a["id"]: api_updated_at(sb, a["id"]), b["id"]: None}
        with pytest.raises(httpx.HTTPStatusError) as bad:
            sb.admin.update_many({a["id"]: {"first_name": None}})  # not nullable: as PATCH
        assert bad.value.response.status_code == 422
        assert sb.state.webhooks.flush(10)
    events = [r["event"] for r in receiver.requests if r["event"]]
    assert [(e["event"], e["data"]["id"]) for e in events] == [("contact.updated", a["id"])]
    assert events[0]["occurred_at"] == committed[a["id"]]
    assert events[0]["data"]["job_title"] == "CTO"


def api_updated_at(sb: Any, contact_id: str) -> str:
    (contact,) = [c for c in sb.admin.contacts("acme") if c["id"] == contact_id]
    return str(contact["updated_at"])
