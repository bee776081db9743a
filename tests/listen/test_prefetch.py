"""The default mode's GETs, sent as events arrive: never an older state, never more GETs.

Real HTTP against the sandbox; the only help is a transport that holds one answer on its way
back, so "an event arrives while its contact's GET is in flight" happens every time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.contact import API_BASE_PATH
from pipelines.listen.prefetch import Prefetcher
from pipelines.listen.receiver import parse_event
from pipelines.listen.spool import SpooledEvent
from tests.listen.helpers import event_body
from tests.waiting import wait_until


class _HoldFirstGet(httpx.BaseTransport):
    """The network, except that the first GET's answer waits for :attr:`release`."""

    def __init__(self) -> None:
        self._network = httpx.HTTPTransport()
        self.held = threading.Event()
        self.release = threading.Event()
        self._first = True

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._network.handle_request(request)
        if request.method == "GET" and self._first:
            self._first = False
            response.read()  # what the server said before the later change
            self.held.set()
            self.release.wait(30)
        return response

    def close(self) -> None:
        self._network.close()


def _event(kind: str, contact: dict[str, Any], occurred_at: str | None = None) -> SpooledEvent:
    return parse_event(json.loads(event_body(kind, contact, occurred_at=occurred_at)), None)


def _gets(sb: SandboxServer) -> int:
    return sum(1 for r in sb.admin.requests() if r["method"] == "GET")


@pytest.fixture
def api(sb: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sb.base_url + API_BASE_PATH,
        headers={"Authorization": f"Bearer {sb.keys['acme']['rw']}"},
        timeout=30,
        trust_env=False,
    ) as client:
        yield client


def test_a_get_that_started_before_a_later_event_never_wins(
    sb: SandboxServer, api: httpx.Client
) -> None:
    v1 = api.post("", json={"first_name": "v1"}).json()
    contact_id = v1["id"]
    sb.admin.clear_requests()
    transport = _HoldFirstGet()
    client = LynkistClient(sb.base_url, sb.keys["acme"]["rw"], transport=transport)
    prefetcher = Prefetcher(client, workers=2)
    try:
        prefetcher.stored(_event("contact.created", v1))
        assert transport.held.wait(30)  # that GET has read v1 and is still on its way back
        v2 = api.patch(f"/{contact_id}", json={"first_name": "v2"}).json()
        prefetcher.stored(_event("contact.updated", v2))
        transport.release.set()
        answer = prefetcher.answers({contact_id: 2})[contact_id]
        assert isinstance(answer, dict) and answer["first_name"] == "v2"
        assert _gets(sb) == 2
        # a late retry of an older delivery: the answer is already newer, no GET
        prefetcher.stored(_event("contact.created", v1))
        assert prefetcher.answers({contact_id: 3})[contact_id] == answer
        assert _gets(sb) == 2
        # a deletion is newer than the answer: fetched again, and gone
        assert api.delete(f"/{contact_id}").status_code == 200
        archived_at = next(c for c in sb.admin.contacts() if c["id"] == contact_id)["archived_at"]
        prefetcher.stored(_event("contact.deleted", v2, occurred_at=archived_at))
        assert isinstance(prefetcher.answers({contact_id: 4})[contact_id], NotFoundError)
        assert _gets(sb) == 3
        # now an old update cannot bring it back: a 404 after a deletion is final
        prefetcher.stored(_event("contact.updated", v2))
        assert isinstance(prefetcher.answers({contact_id: 5})[contact_id], NotFoundError)
        assert _gets(sb) == 3
        prefetcher.written({contact_id: 5})
    finally:
        transport.release.set()
        prefetcher.stop()
        client.close()


def test_a_404_before_the_creation_is_fetched_again(sb: SandboxServer, api: httpx.Client) -> None:
    """A GET can race the creation it was sent for (an update's event overtaking, a replayed
    spool): without a known deletion, a 404 stands only for events stored before it started."""
    v1 = api.post("", json={"first_name": "v1"}).json()
    contact_id = v1["id"]
    assert api.delete(f"/{contact_id}").status_code == 200
    client = LynkistClient(sb.base_url, sb.keys["acme"]["rw"])
    prefetcher = Prefetcher(client, workers=1)
    try:
        # the contact is gone, but its creation's event is the first one heard of
        assert isinstance(prefetcher.answers({contact_id: 1})[contact_id], NotFoundError)
        sb.admin.clear_requests()
        prefetcher.stored(_event("contact.updated", v1))
        prefetcher.answers({contact_id: 1})
        assert _gets(sb) == 1  # no deletion known: the 404 may predate the change
    finally:
        prefetcher.stop()
        client.close()


def test_a_contact_changed_again_in_a_flush_window_is_fetched_once_when_the_flush_asks(
    sb: SandboxServer, api: httpx.Client
) -> None:
    v1 = api.post("", json={"first_name": "v1"}).json()
    contact_id = v1["id"]
    client = LynkistClient(sb.base_url, sb.keys["acme"]["rw"])
    prefetcher = Prefetcher(client, workers=2)
    try:
        prefetcher.stored(_event("contact.created", v1))
        prefetcher.answers({contact_id: 1})  # a flush: a new window begins
        prefetcher.written({contact_id: 1})
        sb.admin.clear_requests()
        for n in (2, 3, 4):  # a burst of edits, each after the previous GET was answered
            changed = api.patch(f"/{contact_id}", json={"first_name": f"v{n}"}).json()
            prefetcher.stored(_event("contact.updated", changed))
            if n == 2:  # its first change in this window: fetched at once
                wait_until(lambda: _gets(sb) == 1, what="the first change's GET")
        answer = prefetcher.answers({contact_id: 3})[contact_id]
        assert isinstance(answer, dict) and answer["first_name"] == "v4"
        assert _gets(sb) == 2  # the two later changes: one GET, when the flush asked
    finally:
        prefetcher.stop()
        client.close()
