"""Retry rules of the client: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from pipelines.client import (
    AuthenticationError,
    BadRequestError,
    LynkistConfigError,
    LynkistTransportError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    parse_retry_after,
)
from tests.client.helpers import API, FakeTime, Script

CONTACT = {"id": "c1", "first_name": "Ann"}
BULK_OK = {"total": 1, "created": 1, "failed": 0, "errors": []}


def r(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def dropped() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("Server disconnected without sending a response.")


# -- Retry-After parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-4", 0.0), ("", None), ("soon", None), (None, None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=0.0) == expected


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    now = 1_800_000_000.0
    future = email.utils.formatdate(now + 42, usegmt=True)
    past = email.utils.formatdate(now - 42, usegmt=True)
    assert parse_retry_after(future, now=now) == pytest.approx(42.0)
    assert parse_retry_after(past, now=now) == 0.0


# -- waits -------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(make_client, fake_time: FakeTime) -> None:
    script = Script(r(429, {"detail": "slow down"}, **{"Retry-After": "2"}), r(200, CONTACT))
    client = make_client(script)
    assert client.get_contact("c1") == CONTACT
    assert len(script.requests) == 2
    assert len(fake_time.sleeps) == 1
    assert 2.0 <= fake_time.sleeps[0] <= 2.2  # Retry-After plus at most 10% jitter
    assert (client.stats.retries, client.stats.throttled, client.stats.requests) == (1, 1, 2)


def test_429_retry_after_http_date_is_honoured(make_client, fake_time: FakeTime) -> None:
    when = email.utils.formatdate(fake_time.now + 7, usegmt=True)
    script = Script(r(429, **{"Retry-After": when}), r(200, CONTACT))
    assert make_client(script).get_contact("c1") == CONTACT
    assert 7.0 <= fake_time.sleeps[0] <= 7.7


def test_backoff_grows_and_is_capped(make_client, fake_time: FakeTime) -> None:
    script = Script(*[r(503)] * 6, r(200, CONTACT))
    policy = fake_time.policy(initial_backoff=1.0, multiplier=2.0, max_backoff=4.0, budget=1e6)
    assert make_client(script, policy=policy).get_contact("c1") == CONTACT
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(fake_time.sleeps) == len(ceilings)
    for slept, ceiling in zip(fake_time.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_429_until_budget_is_spent_raises_rate_limit_error(
    make_client, fake_time: FakeTime
) -> None:
    script = Script(r(429, **{"Retry-After": "10"}))
    policy = fake_time.policy(budget=35.0, max_attempts=100)
    client = make_client(script, policy=policy)
    with pytest.raises(RateLimitError) as info:
        client.list_contacts()
    assert sum(fake_time.sleeps) <= 35.0
    assert len(script.requests) == 4  # waits of ~10s fit three times into 35s
    assert info.value.attempts == 4
    assert info.value.retry_after == 10.0
    assert "gave up after 4 attempts" in str(info.value)
    assert client.stats.errors == 1


def test_retry_after_beyond_budget_fails_without_sleeping(make_client, fake_time) -> None:
    script = Script(r(429, **{"Retry-After": "3600"}))
    with pytest.raises(RateLimitError, match="wait 3600s"):
        make_client(script, policy=fake_time.policy(budget=60.0)).list_contacts()
    assert fake_time.sleeps == []
    assert len(script.requests) == 1


def test_5xx_until_attempts_run_out_raises_server_error(make_client, fake_time) -> None:
    script = Script(r(502, {"detail": "bad gateway"}))
    with pytest.raises(ServerError) as info:
        make_client(script, policy=fake_time.policy(max_attempts=3)).list_contacts()
    assert info.value.status == 502
    assert len(script.requests) == 3
    assert len(fake_time.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, ValidationError),
    ],
)
def test_client_errors_are_never_retried(make_client, fake_time, status, error) -> None:
    script = Script(r(status, {"detail": "no"}), r(200, CONTACT))
    client = make_client(script)
    with pytest.raises(error):
        client.update_contact("c1", {"status": "lead"})
    assert len(script.requests) == 1
    assert fake_time.sleeps == []
    assert client.stats.retries == 0


@pytest.mark.parametrize(
    "failure",
    [dropped(), httpx.ReadTimeout("timed out"), httpx.ReadError("reset by peer")],
    ids=["dropped", "read-timeout", "read-error"],
)
def test_reads_are_retried_after_transport_failures(make_client, failure) -> None:
    script = Script(r(200, CONTACT), failure, r(200, CONTACT))
    client = make_client(script)
    client.get_contact("c1")
    assert client.get_contact("c1") == CONTACT
    assert len(script.requests) == 3
    assert client.stats.transport_errors == 1


# -- non-idempotent writes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [dropped(), httpx.ReadTimeout("timed out"), httpx.WriteError("broken pipe"), r(500), r(503)],
    ids=["dropped", "read-timeout", "write-error", "500", "503"],
)
def test_bulk_is_not_resent_when_it_may_have_been_processed(make_client, failure) -> None:
    script = Script(failure, r(201, BULK_OK))
    client = make_client(script)
    with pytest.raises(OutcomeUnknownError) as info:
        client.bulk_create([{"first_name": "Ann"}])
    assert len(script.requests) == 1
    assert info.value.method == "POST"
    assert info.value.endpoint == f"{API}/bulk"
    assert "reconcile" in str(info.value) or "check what exists" in str(info.value)


def test_bulk_outcome_unknown_carries_5xx_status(make_client) -> None:
    with pytest.raises(OutcomeUnknownError) as info:
        make_client(Script(r(502))).bulk_create([{"first_name": "Ann"}])
    assert info.value.status == 502


def test_bulk_is_retried_after_429(make_client, fake_time) -> None:
    script = Script(r(429, **{"Retry-After": "1"}), r(201, BULK_OK))
    result = make_client(script).bulk_create([{"first_name": "Ann"}])
    assert result.created == 1
    assert len(script.requests) == 2
    assert len(fake_time.sleeps) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("connect timed out")],
    ids=["connect-error", "connect-timeout"],
)
def test_bulk_is_retried_when_it_was_never_sent(make_client, failure) -> None:
    script = Script(r(200, page_one()), failure, r(201, BULK_OK))
    client = make_client(script)
    client.list_contacts()
    assert client.bulk_create([{"first_name": "Ann"}]).created == 1
    assert [req.method for req in script.requests] == ["GET", "POST", "POST"]


def test_create_without_idempotency_key_is_not_resent(make_client) -> None:
    script = Script(dropped(), r(201, CONTACT))
    with pytest.raises(OutcomeUnknownError):
        make_client(script).create_contact({"first_name": "Ann"})
    assert len(script.requests) == 1


def test_create_with_idempotency_key_is_retried_with_the_same_key(make_client) -> None:
    script = Script(dropped(), r(500), r(201, CONTACT))
    created = make_client(script).create_contact({"first_name": "Ann"}, idempotency_key="k-1")
    assert created == CONTACT
    assert [req.headers["Idempotency-Key"] for req in script.requests] == ["k-1"] * 3


def test_patch_is_retried_after_5xx_and_drops(make_client) -> None:
    script = Script(r(502), dropped(), r(200, CONTACT))
    assert make_client(script).update_contact("c1", {"status": "lead"}) == CONTACT
    assert [req.method for req in script.requests] == ["PATCH"] * 3
    assert all(req.content == b'{"status":"lead"}' for req in script.requests)


def test_delete_retry_answering_404_after_a_lost_answer_counts_as_done(make_client) -> None:
    script = Script(dropped(), r(404, {"detail": "Contact not found"}))
    assert make_client(script).delete_contact("c1") is None
    assert len(script.requests) == 2


def test_delete_of_a_missing_contact_raises_not_found(make_client) -> None:
    script = Script(r(404, {"detail": "Contact not found"}))
    with pytest.raises(NotFoundError):
        make_client(script).delete_contact("c1")


# -- unreachable server ------------------------------------------------------------------


def test_unreachable_server_at_first_contact_is_a_config_error(make_client, fake_time) -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(LynkistConfigError) as info:
        make_client(script, policy=fake_time.policy(first_contact_attempts=2)).list_contacts()
    assert "http://lynkist.invalid" in str(info.value)
    assert "Connection refused" in str(info.value)
    assert len(script.requests) == 2


def test_connection_refused_later_is_retried_then_a_transport_error(make_client, fake_time):
    script = Script(r(200, page_one()), httpx.ConnectError("refused"))
    client = make_client(script, policy=fake_time.policy(max_attempts=4))
    client.list_contacts()
    with pytest.raises(LynkistTransportError) as info:
        client.list_contacts()
    assert not isinstance(info.value, LynkistConfigError | OutcomeUnknownError)
    assert len(script.requests) == 1 + 4


def page_one() -> dict[str, object]:
    return {
        "data": [],
        "pagination": {
            "page": 1,
            "limit": 100,
            "total_items": 0,
            "total_pages": 0,
            "has_next": False,
            "has_prev": False,
        },
    }
