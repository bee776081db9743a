"""Typed errors: actionable messages naming method and endpoint, and never the API key."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pipelines.client import (
    USER_AGENT,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LynkistAPIError,
    LynkistClient,
    LynkistConfigError,
    LynkistError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    redact,
    redact_headers,
)
from tests.client.helpers import API, API_KEY, BASE_URL, FakeTime, Script

ECHO = {"detail": f"token {API_KEY} is not valid here"}  # a careless server echoing the key


def respond(status: int, body: Any = ECHO, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _list(c: LynkistClient) -> object:
    return c.list_contacts()


def _get(c: LynkistClient) -> object:
    return c.get_contact("c-42")


def _patch(c: LynkistClient) -> object:
    return c.update_contact("c-42", {"email": "x@"})


def _keyed_create(c: LynkistClient) -> object:
    return c.create_contact({"first_name": "Ann"}, idempotency_key="k-1")


def _bulk(c: LynkistClient) -> object:
    return c.bulk_create([{"first_name": "Ann"}])


# (what the server does, the call, expected error, method, path)
CASES: list[tuple[str, Any, Callable[[LynkistClient], object], type[LynkistError], str, str]] = [
    ("400", respond(400), _patch, BadRequestError, "PATCH", f"{API}/c-42"),
    ("401", respond(401), _list, AuthenticationError, "GET", API),
    ("403-read", respond(403), _get, PermissionDeniedError, "GET", f"{API}/c-42"),
    ("403-write", respond(403), _bulk, PermissionDeniedError, "POST", f"{API}/bulk"),
    ("404", respond(404), _get, NotFoundError, "GET", f"{API}/c-42"),
    ("404-collection", respond(404), _list, LynkistConfigError, "GET", API),
    ("422", respond(422), _patch, ValidationError, "PATCH", f"{API}/c-42"),
    ("429", respond(429), _list, RateLimitError, "GET", API),
    ("500", respond(500), _get, ServerError, "GET", f"{API}/c-42"),
    ("409", respond(409), _patch, LynkistAPIError, "PATCH", f"{API}/c-42"),
    # only a keyed request's 409 means "the same key is still in progress" (and is retried)
    ("409-keyed", respond(409), _keyed_create, ConflictError, "POST", API),
    ("bulk-500", respond(500), _bulk, OutcomeUnknownError, "POST", f"{API}/bulk"),
    (
        # no answer at the first contact: the host is named as a configuration problem
        "timeout-first-contact",
        httpx.ReadTimeout(f"timed out ({API_KEY})"),
        _get,
        LynkistConfigError,
        "GET",
        "lynkist.invalid accepted the connection but did not answer",
    ),
    (
        "bulk-dropped",
        httpx.RemoteProtocolError(f"peer closed ({API_KEY})"),
        _bulk,
        OutcomeUnknownError,
        "POST",
        f"{API}/bulk",
    ),
    (
        "unreachable",
        httpx.ConnectError(f"refused ({API_KEY})"),
        _list,
        LynkistConfigError,
        "GET",
        BASE_URL,
    ),
]


def _raise(make_client, fake_time: FakeTime, step: Any, call) -> LynkistError:
    client = make_client(Script(step), policy=fake_time.policy(max_attempts=2))
    with pytest.raises(LynkistError) as info:
        call(client)
    return info.value


@pytest.mark.parametrize(
    ("step", "call", "error_type", "method", "path"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_errors_name_the_endpoint_and_never_the_key(
    make_client, fake_time, caplog, step, call, error_type, method, path
) -> None:
    caplog.set_level(logging.DEBUG)
    error = _raise(make_client, fake_time, step, call)
    assert type(error) is error_type
    text = str(error)
    assert path in text
    if error_type is not LynkistConfigError or "404" in text:
        assert text.startswith(method)
    rendered = [
        text,
        repr(error),
        repr(error.args),
        repr(vars(error)),
        "".join(traceback.format_exception(error)),
        str(pickle.loads(pickle.dumps(error))),
        caplog.text,
    ]
    for piece in rendered:
        assert API_KEY not in piece
    # No httpx object (whose request carries the Authorization header) hangs off the error.
    chained = [error.__cause__, error.__context__]
    assert not any(isinstance(e, httpx.HTTPError) for e in chained)
    assert not any(isinstance(v, httpx.Request | httpx.Response) for v in vars(error).values())


def test_401_says_the_key_was_rejected(make_client, fake_time) -> None:
    error = _raise(make_client, fake_time, respond(401), _list)
    assert "the API key was rejected" in str(error)
    assert "LYNKIST_API_KEY" in str(error)


@pytest.mark.parametrize(
    ("call", "scope"),
    [(_list, "contacts:read"), (_get, "contacts:read"), (_patch, "contacts:write")],
)
def test_403_names_the_missing_scope(make_client, fake_time, call, scope) -> None:
    error = _raise(make_client, fake_time, respond(403), call)
    assert isinstance(error, PermissionDeniedError)
    assert f"the key lacks {scope}" in str(error)
    assert error.scope == scope


def test_403_on_search_needs_read_scope(make_client, fake_time) -> None:
    error = _raise(make_client, fake_time, respond(403), lambda c: c.search_contacts(tag="x"))
    assert "contacts:read" in str(error)


def test_422_lists_field_errors_with_the_bad_value(make_client, fake_time) -> None:
    detail = [
        {"loc": ["body", "email"], "msg": "value is not a valid email address", "input": "x@"},
        {"loc": ["body", "phone"], "msg": "String should have at most 20 characters"},
        {"loc": ["body", "phone"], "msg": "must start with +"},
    ]
    error = _raise(make_client, fake_time, respond(422, {"detail": detail}), _patch)
    assert isinstance(error, ValidationError)
    assert error.field_errors == {
        "email": "value is not a valid email address (got 'x@')",
        "phone": "String should have at most 20 characters; must start with +",
    }
    assert "email: value is not a valid email address (got 'x@')" in str(error)
    assert error.status == 422
    assert error.detail == detail


def test_429_error_reports_retry_after(make_client, fake_time) -> None:
    error = _raise(make_client, fake_time, respond(429, {}, **{"Retry-After": "5"}), _list)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 5.0
    assert error.attempts == 2


def test_non_json_success_body_is_a_clear_error(make_client, fake_time) -> None:
    step = httpx.Response(200, text="<html>captive portal</html>")
    error = _raise(make_client, fake_time, step, _list)
    assert type(error) is LynkistAPIError
    assert "not JSON" in str(error)
    assert BASE_URL in str(error)


def test_redirect_is_a_config_error_naming_the_target(make_client, fake_time) -> None:
    step = httpx.Response(301, headers={"Location": "https://api.lynkist.io/x"})
    error = _raise(make_client, fake_time, step, _list)
    assert isinstance(error, LynkistConfigError)
    assert "https://api.lynkist.io/x" in str(error)


def test_errors_pickle_with_their_attributes() -> None:
    error = ValidationError(422, "PATCH", f"{API}/c1", [{"loc": ["body", "x"], "msg": "bad"}])
    error.attempts = 3
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is ValidationError
    assert clone.field_errors == {"x": "bad"}
    assert (clone.status, clone.method, clone.endpoint, clone.attempts) == (
        422,
        "PATCH",
        f"{API}/c1",
        3,
    )
    assert str(clone) == str(error)


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    ["", "api.lynkist.io", "ftp://api.lynkist.io", "http://", "https://h/x?y=1", "http://[::1"],
)
def test_bad_base_url_is_a_config_error(base_url: str) -> None:
    with pytest.raises(LynkistConfigError, match="base URL"):
        LynkistClient(base_url, API_KEY)


@pytest.mark.parametrize("api_key", ["", "   ", "key with spaces", "key\nnewline"])
def test_bad_api_key_is_a_config_error_without_echoing_it(api_key: str) -> None:
    with pytest.raises(LynkistConfigError, match="LYNKIST_API_KEY") as info:
        LynkistClient(BASE_URL, api_key)
    if api_key.strip():
        assert api_key not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    ["http://h:8080", "http://h:8080/", f"http://h:8080{API}", f"http://h:8080{API}/"],
)
def test_base_url_forms_reach_the_same_endpoint(make_client, base_url: str) -> None:
    script = Script(respond(200, {"id": "c1"}))
    make_client(script, base_url=base_url).get_contact("c1")
    assert str(script.requests[0].url) == f"http://h:8080{API}/c1"


def test_requests_carry_auth_user_agent_and_no_key_in_repr(make_client) -> None:
    script = Script(respond(200, {"id": "c/1"}))
    client = make_client(script)
    client.get_contact("c/1")
    request = script.requests[0]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("lynkist-etl/0.")
    assert request.url.raw_path.decode() == f"{API}/c%2F1"  # ids cannot escape the path
    assert API_KEY not in repr(client)
    assert API_KEY not in repr(vars(client))


def test_redact_masks_secrets_in_nested_data() -> None:
    data = {"detail": [f"bad {API_KEY}", {"k": API_KEY}], API_KEY: 1, "n": 2}
    assert API_KEY not in repr(redact(data, [API_KEY]))
    assert redact(data, [API_KEY])["n"] == 2
    assert redact_headers({"Authorization": f"Bearer {API_KEY}", "Accept": "x"}) == {
        "Authorization": "***",
        "Accept": "x",
    }
