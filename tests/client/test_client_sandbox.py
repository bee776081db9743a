"""The client against the real sandbox over HTTP on loopback."""

from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import (
    AuthenticationError,
    LynkistClient,
    LynkistConfigError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RetryPolicy,
    ValidationError,
)
from pipelines.contact import API_BASE_PATH


class Sleeps(list[float]):
    """Records the waits the policy asks for instead of sleeping (the faults are random draws,
    not time-based, so not sleeping changes nothing on the server's side)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sb: SandboxServer, api_key: str, sleeps: Sleeps) -> Iterator[LynkistClient]:
    policy = RetryPolicy(sleep=sleeps, max_attempts=12)
    with LynkistClient(sb.base_url, api_key, timeout=10, max_concurrency=4, retry=policy) as c:
        yield c


def live_ids(sb: SandboxServer, tenant: str = "acme") -> set[str]:
    return {c["id"] for c in sb.admin.contacts(tenant) if c.get("archived_at") is None}


def api_requests(sb: SandboxServer, method: str, path: str) -> list[dict]:
    return [r for r in sb.admin.requests() if r["method"] == method and r["path"] == path]


def test_crud_round_trip(sb: SandboxServer, client: LynkistClient) -> None:
    key = uuid.uuid4().hex
    fields = {"first_name": "Ann", "email": "ann@acme.test", "tags": ["vip"], "status": "lead"}
    created = client.create_contact(fields, idempotency_key=key)
    assert created["first_name"] == "Ann"
    assert client.create_contact(fields, idempotency_key=key)["id"] == created["id"]
    assert live_ids(sb) == {created["id"]}

    assert client.get_contact(created["id"])["email"] == "ann@acme.test"
    page = client.list_contacts(limit=10)
    assert [c["id"] for c in page.data] == [created["id"]]
    assert (page.total_items, page.total_pages, page.has_next) == (1, 1, False)
    found = client.search_contacts(tag="vip", status="lead")
    assert [c["id"] for c in found.data] == [created["id"]]
    assert client.search_contacts(tag="nope").data == []

    updated = client.update_contact(created["id"], {"status": "customer", "last_name": "Lee"})
    assert (updated["status"], updated["last_name"]) == ("customer", "Lee")
    assert updated["updated_at"] is not None

    client.delete_contact(created["id"])
    assert live_ids(sb) == set()
    with pytest.raises(NotFoundError, match=f"GET {API_BASE_PATH}/{created['id']}"):
        client.get_contact(created["id"])


def test_bulk_create_reports_per_item_errors(sb: SandboxServer, client: LynkistClient) -> None:
    result = client.bulk_create(
        [{"first_name": "Ann"}, {"first_name": "Bob", "email": "bob@acme.test"}, {"first_name": ""}]
    )
    assert (result.total, result.created, result.failed) == (3, 2, 1)
    assert list(result.failed_indexes) == [2]
    assert len(live_ids(sb)) == 2


def test_http_errors_map_to_typed_errors(sb: SandboxServer, client: LynkistClient) -> None:
    with pytest.raises(NotFoundError):
        client.get_contact(str(uuid.uuid4()))
    with pytest.raises(ValidationError) as info:
        client.create_contact({"first_name": "Ann", "email": "not-an-address"})
    assert "email" in info.value.field_errors
    assert "not-an-address" in str(info.value)
    with pytest.raises(ValidationError) as info:
        client.create_contact({"first_name": "Ann", "favourite_colour": "red"})
    assert "favourite_colour" in info.value.field_errors


@pytest.mark.parametrize(
    ("kind", "call", "scope"),
    [
        ("ro", lambda c: c.bulk_create([{"first_name": "Ann"}]), "contacts:write"),
        ("ro", lambda c: c.update_contact(str(uuid.uuid4()), {"status": "x"}), "contacts:write"),
        ("wo", lambda c: c.list_contacts(), "contacts:read"),
        ("wo", lambda c: c.search_contacts(search_term="a"), "contacts:read"),
    ],
)
def test_scopes_are_enforced_with_actionable_messages(sb: SandboxServer, kind, call, scope):
    key = sb.keys["acme"][kind]
    with LynkistClient(sb.base_url, key) as c, pytest.raises(PermissionDeniedError) as info:
        call(c)
    assert f"the key lacks {scope}" in str(info.value)
    assert key not in str(info.value)


def test_wrong_key_is_an_authentication_error_without_the_key(sb: SandboxServer) -> None:
    wrong = "lk_sandbox_" + uuid.uuid4().hex
    with LynkistClient(sb.base_url, wrong) as c, pytest.raises(AuthenticationError) as info:
        c.list_contacts()
    assert "the API key was rejected" in str(info.value)
    assert wrong not in repr(info.value)


def test_unreachable_base_url_is_a_config_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(initial_backoff=0.01)
    url = f"http://127.0.0.1:{port}"
    with LynkistClient(url, "k", retry=policy) as c, pytest.raises(LynkistConfigError, match=url):
        c.list_contacts()


def test_iter_contact_pages_yields_every_contact_once(sb: SandboxServer, client) -> None:
    assert sb.admin.seed("acme", n=430, seed=3) == 430
    sb.admin.clear_requests()
    pages = client.iter_contact_pages(limit=50)
    seen = Counter(c["id"] for page in pages for c in page.data)
    assert set(seen) == live_ids(sb)
    assert set(seen.values()) == {1}
    assert pages.total_pages == 9
    listed = Counter(r["query"] for r in api_requests(sb, "GET", API_BASE_PATH))
    assert len(listed) == 9
    assert set(listed.values()) == {1}  # every page requested exactly once


def test_iter_contact_pages_survives_5xx_429_and_drops(
    sb: SandboxServer, client: LynkistClient, sleeps: Sleeps
) -> None:
    sb.admin.seed("acme", n=600, seed=4)
    sb.admin.set_faults(error_5xx=0.2, error_429=0.2, drop=0.1, seed=11)
    seen = Counter(c["id"] for page in client.iter_contact_pages(limit=50) for c in page.data)
    sb.admin.set_faults()
    assert set(seen) == live_ids(sb)
    assert set(seen.values()) == {1}
    stats = client.stats
    assert stats.retries > 0
    assert stats.throttled > 0
    assert stats.requests == 12 + stats.retries
    assert any(s >= 1.0 for s in sleeps)  # the sandbox's Retry-After: 1 was honoured


@pytest.mark.parametrize("fault", ["drop", "drop_after_commit"])
def test_bulk_is_never_resent_after_a_dropped_connection(
    sb: SandboxServer, client: LynkistClient, fault: str
) -> None:
    sb.admin.set_faults(**{fault: 1.0})
    with pytest.raises(OutcomeUnknownError):
        client.bulk_create([{"first_name": "Ann"}, {"first_name": "Bob"}])
    sb.admin.set_faults()
    assert len(api_requests(sb, "POST", f"{API_BASE_PATH}/bulk")) == 1
    # drop_after_commit: the batch was written although the answer was lost.
    assert len(live_ids(sb)) == (2 if fault == "drop_after_commit" else 0)


def test_bulk_is_retried_after_429(sb: SandboxServer, client: LynkistClient, sleeps) -> None:
    sb.admin.set_faults(error_429=0.5, seed=2)
    results = [client.bulk_create([{"first_name": f"n{i}"}]) for i in range(10)]
    sb.admin.set_faults()
    assert sum(r.created for r in results) == 10
    assert len(live_ids(sb)) == 10
    assert client.stats.throttled > 0
    assert len(api_requests(sb, "POST", f"{API_BASE_PATH}/bulk")) == 10 + client.stats.throttled


def test_create_with_idempotency_key_is_retried_without_duplicates(
    sb: SandboxServer, client: LynkistClient
) -> None:
    sb.admin.set_faults(drop_after_commit=1.0)
    with pytest.raises(OutcomeUnknownError):
        client.create_contact({"first_name": "NoKey"})
    sb.admin.set_faults(drop_after_commit=0.5, seed=5)
    for i in range(6):
        client.create_contact({"first_name": f"k{i}"}, idempotency_key=f"key-{i}")
    sb.admin.set_faults()
    names = Counter(c["first_name"] for c in sb.admin.contacts("acme"))
    assert names == Counter(["NoKey"] + [f"k{i}" for i in range(6)])
    assert client.stats.retries > 0


def test_a_keyed_create_is_retried_while_its_key_is_still_in_progress(
    sb: SandboxServer, api_key: str
) -> None:
    # Both sends of one key overlap on the server (each is held 1 s before it commits): the
    # later one is answered 409, retried with the same key, and replays the first's contact.
    sb.admin.set_faults(commit_delay_ms=1000)
    policy = RetryPolicy(initial_backoff=0.2, max_backoff=0.5, budget=20)
    fields = {"first_name": "Held", "email": "held@acme.test"}
    with LynkistClient(sb.base_url, api_key, timeout=10, max_concurrency=2, retry=policy) as c:
        answers = dict(
            c.map_concurrent(lambda _: c.create_contact(fields, idempotency_key="held"), [1, 2])
        )
        retries = c.stats.retries
    sb.admin.set_faults()
    assert all(isinstance(answer, dict) for answer in answers.values()), answers
    ids = {answer["id"] for answer in answers.values()}
    assert len(ids) == 1 and live_ids(sb) == ids
    assert retries >= 1


def test_patch_and_delete_are_retried_through_faults(
    sb: SandboxServer, client: LynkistClient
) -> None:
    ids = [client.create_contact({"first_name": f"p{i}"})["id"] for i in range(8)]
    sb.admin.set_faults(error_5xx=0.3, drop=0.1, drop_after_commit=0.3, seed=9)
    patched = dict(client.map_concurrent(lambda i: client.update_contact(i, {"status": "x"}), ids))
    for contact_id in ids[:4]:
        client.delete_contact(contact_id)
    sb.admin.set_faults()
    assert all(isinstance(v, dict) and v["status"] == "x" for v in patched.values())
    assert live_ids(sb) == set(ids[4:])
    assert client.stats.retries > 0


def test_rate_limited_sandbox_throttles_concurrency(sb: SandboxServer, api_key: str) -> None:
    asked: list[float] = []

    def short_sleep(seconds: float) -> None:
        # The sandbox's Retry-After is whole seconds; its bucket refills every 10 ms, so a
        # short real pause keeps the test fast while still letting tokens come back.
        asked.append(seconds)
        time.sleep(0.02)

    policy = RetryPolicy(sleep=short_sleep, max_attempts=30)
    with LynkistClient(sb.base_url, api_key, max_concurrency=4, retry=policy) as client:
        client.create_contact({"first_name": "Ann"})
        sb.admin.set_settings(rate_limit=100.0, burst=2, retry_after="mixed")
        limits: list[int] = []

        def one_page(_: int) -> object:
            limits.append(client.limiter.limit)
            return client.list_contacts(limit=1)

        results = list(client.map_concurrent(one_page, range(40)))
        sb.admin.set_settings(rate_limit=None, burst=None)
        assert all(not isinstance(r, Exception) for _, r in results)
        assert client.stats.throttled > 0
        assert min(limits) < client.limiter.max_concurrency  # fewer in flight once throttled
        assert asked and all(s >= 0 for s in asked)


def test_search_pages_through_the_shared_paginator(
    sb: SandboxServer, client: LynkistClient
) -> None:
    result = client.bulk_create([{"first_name": f"P{i}", "tags": ["paged"]} for i in range(25)])
    assert result.failed == 0
    client.bulk_create([{"first_name": "Other", "tags": ["other"]}])
    pages = client.iter_search_pages(tag="paged", limit=10)
    seen = Counter(c["first_name"] for page in pages for c in page.data)
    assert pages.total_pages == 3
    assert seen == Counter(f"P{i}" for i in range(25))  # every match once, nothing else
    searches = [r for r in sb.admin.requests() if r["path"].endswith("/search")]
    assert sorted(r["query"] for r in searches) == [f"page={n}&limit=10" for n in (1, 2, 3)]
