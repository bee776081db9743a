"""Webhooks end to end: the sandbox's own deliveries, for real API writes, checked by the helper
users run in their receivers (``pipelines.webhooks.verify``) with the configured shared secret.

The dispatcher and the helper are tested apart in ``tests/sandbox/test_webhooks.py`` and
``tests/test_webhooks_verify.py`` (default secret, a hand-built event); here the whole path: a
sandbox started with its own secret, events for POST, bulk, PATCH and DELETE, and each captured
delivery tampered with, re-serialised, replayed and checked against the wrong secret.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxConfig, SandboxServer
from pipelines.contact import API_BASE_PATH
from pipelines.webhooks import ReplayGuard, WebhookVerificationError, verify

SECRET = "whsec_h9_custom_2f7c1e"
DEFAULT_SECRET = SandboxConfig().webhook_secret


class _Capture(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.deliveries.append((body, dict(self.headers)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def deliveries() -> Iterator[list[tuple[bytes, dict[str, str]]]]:
    """Raw deliveries of a sandbox with a custom secret, for one create/bulk/update/delete."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    captured: list[tuple[bytes, dict[str, str]]] = []
    receiver.deliveries = captured  # type: ignore[attr-defined]
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    config = SandboxConfig(webhook_urls=[url], webhook_secret=SECRET)
    try:
        with (
            SandboxServer(config) as server,
            httpx.Client(
                base_url=server.base_url + API_BASE_PATH,
                headers={"Authorization": f"Bearer {server.keys['acme']['rw']}"},
                trust_env=False,
            ) as http,
        ):
            contact = http.post("", json={"first_name": "Ann", "email": "ann@acme.test"}).json()
            bulk = http.post("/bulk", json={"contacts": [{"first_name": "Bo"}]})
            assert bulk.json()["created"] == 1
            assert http.patch(f"/{contact['id']}", json={"status": "customer"}).status_code == 200
            assert http.delete(f"/{contact['id']}").status_code == 200
            assert server.state is not None and server.state.webhooks.flush(10)
        yield captured
    finally:
        receiver.shutdown()
        receiver.server_close()


def _signature(headers: dict[str, str]) -> str:
    return next(v for k, v in headers.items() if k.lower() == "lynkist-signature")


def test_every_delivery_verifies_with_the_configured_secret_only(
    deliveries: list[tuple[bytes, dict[str, str]]],
) -> None:
    events = [verify(body, _signature(headers), SECRET) for body, headers in deliveries]
    assert sorted(e["event"] for e in events) == [
        "contact.created",
        "contact.created",
        "contact.deleted",
        "contact.updated",
    ]
    for (body, headers), event in zip(deliveries, events, strict=True):
        assert event == json.loads(body) and event["tenant"] == "acme"
        assert next(v for k, v in headers.items() if k.lower() == "lynkist-event-id") == event["id"]
        with pytest.raises(WebhookVerificationError, match="signature mismatch"):
            verify(body, _signature(headers), DEFAULT_SECRET)
        assert SECRET not in body.decode() and SECRET not in json.dumps(headers)


def test_tampered_reserialised_and_replayed_deliveries_are_rejected(
    deliveries: list[tuple[bytes, dict[str, str]]],
) -> None:
    guard = ReplayGuard()
    for body, headers in deliveries:
        signature = _signature(headers)
        event = json.loads(body)
        tampered = json.dumps({**event, "tenant": "globex"}).encode()
        with pytest.raises(WebhookVerificationError, match="signature mismatch"):
            verify(tampered, signature, SECRET)
        # a receiver must verify the raw bytes: the same JSON re-serialised no longer matches
        reserialised = json.dumps(event, indent=1).encode()
        assert json.loads(reserialised) == event and reserialised != body
        with pytest.raises(WebhookVerificationError, match="signature mismatch"):
            verify(reserialised, signature, SECRET)
        assert verify(body, signature, SECRET, replay_guard=guard)["id"] == event["id"]
        with pytest.raises(WebhookVerificationError, match="already received"):
            verify(body, signature, SECRET, replay_guard=guard)
        timestamp = int(signature.split("t=", 1)[1].split(",", 1)[0])
        with pytest.raises(WebhookVerificationError, match="replay"):
            verify(body, signature, SECRET, now=timestamp + 301)
