"""Contract: 422 field-level validation, 400 for a missing or malformed body, bulk limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from tests.sandbox.conftest import create

BAD_CREATES: list[tuple[dict[str, Any], str, str]] = [
    ({}, "first_name", "missing"),
    ({"last_name": "Only"}, "first_name", "missing"),
    ({"first_name": ""}, "first_name", "string_too_short"),
    ({"first_name": "x" * 256}, "first_name", "string_too_long"),
    ({"first_name": None}, "first_name", "string_type"),
    ({"first_name": 5}, "first_name", "string_type"),
    ({"first_name": "A", "phone": "+1" + "2" * 19}, "phone", "string_too_long"),
    ({"first_name": "A", "email": "not-an-email"}, "email", "value_error"),
    ({"first_name": "A", "email": "a@@b.test"}, "email", "value_error"),
    ({"first_name": "A", "email": ""}, "email", "value_error"),
    ({"first_name": "A", "tags": "india"}, "tags", "list_type"),
    ({"first_name": "A", "tags": ["ok", 3]}, "tags.1", "string_type"),
    ({"first_name": "A", "tags": None}, "tags", "list_type"),
    ({"first_name": "A", "custom_fields": ["x"]}, "custom_fields", "dict_type"),
    ({"first_name": "A", "custom_fields": "x"}, "custom_fields", "dict_type"),
    ({"first_name": "A", "status": 1}, "status", "string_type"),
    ({"first_name": "A", "nickname": "Al"}, "nickname", "extra_forbidden"),
    ({"first_name": "A", "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}, "id", "extra_forbidden"),
    ({"first_name": "A", "created_at": "2026-01-01T00:00:00Z"}, "created_at", "extra_forbidden"),
]


@pytest.mark.parametrize(("body", "field", "kind"), BAD_CREATES)
def test_invalid_create_is_422_with_field_details(
    sb: SandboxServer, client: httpx.Client, body: dict[str, Any], field: str, kind: str
) -> None:
    response = client.post("", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert isinstance(details, list)
    assert {(".".join(map(str, d["loc"])), d["type"]) for d in details} >= {(f"body.{field}", kind)}
    assert all(d["msg"] for d in details)
    assert sb.admin.contacts("acme") == []


@pytest.mark.parametrize(
    "good",
    [
        {"first_name": "x" * 255},
        {"first_name": "A", "phone": "+" + "9" * 19},
        {"first_name": "A", "phone": "not e164 but short"},
        {"first_name": "A", "email": "anurag@acme.test"},
        {"first_name": "A", "email": "o'brien+tag@example.co.uk"},
        {"first_name": "A", "tags": []},
        {"first_name": "A", "custom_fields": {}},
        {"first_name": "A", "last_name": None, "email": None, "phone": None},
    ],
)
def test_valid_edge_values_are_accepted(client: httpx.Client, good: dict[str, Any]) -> None:
    response = client.post("", json=good)
    assert response.status_code == 201, response.text
    contact = response.json()
    assert {k: contact[k] for k in good if k != "email"} == {
        k: v for k, v in good.items() if k != "email"
    }


def test_email_is_stored_normalized(client: httpx.Client) -> None:
    contact = create(client, email="Anurag@ACME.Test")
    assert contact["email"] == "Anurag@acme.test"


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"first_name": ""}, "first_name", "string_too_short"),
        ({"phone": "1" * 21}, "phone", "string_too_long"),
        ({"email": "nope"}, "email", "value_error"),
        ({"tags": [1]}, "tags.0", "string_type"),
        ({"custom_fields": 1}, "custom_fields", "dict_type"),
        ({"id": "x"}, "id", "extra_forbidden"),
        ({"updated_at": None}, "updated_at", "extra_forbidden"),
    ],
)
def test_invalid_patch_is_422_and_changes_nothing(
    client: httpx.Client, body: dict[str, Any], field: str, kind: str
) -> None:
    contact = create(client)
    response = client.patch(f"/{contact['id']}", json=body)
    assert response.status_code == 422
    locs = {(".".join(map(str, d["loc"])), d["type"]) for d in response.json()["detail"]}
    assert (f"body.{field}", kind) in locs
    assert client.get(f"/{contact['id']}").json() == contact


BODY_ENDPOINTS = [("POST", ""), ("POST", "/bulk"), ("POST", "/search"), ("PATCH", "/{id}")]
BAD_BODIES = [
    (b"", "required"),
    (b"{not json", "Malformed JSON"),
    (b'{"first_name": "A",}', "Malformed JSON"),
    (b"[]", "JSON object"),
    (b'"text"', "JSON object"),
    (b"42", "JSON object"),
    (b"null", "JSON object"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
@pytest.mark.parametrize(("content", "message"), BAD_BODIES)
def test_missing_or_malformed_body_is_400(
    client: httpx.Client, method: str, path: str, content: bytes, message: str
) -> None:
    contact = create(client)
    url = path.replace("{id}", contact["id"])
    response = client.request(
        method, url, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": -1}, {"page": "x"}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_out_of_range_page_or_limit_is_422(
    client: httpx.Client, params: dict[str, Any], method: str
) -> None:
    if method == "GET":
        response = client.get("", params=params)
    else:
        response = client.post("/search", params=params, json={})
    assert response.status_code == 422
    (name,) = params
    assert response.json()["detail"][0]["loc"] == ["query", name]


def test_search_body_rejects_unknown_filters(client: httpx.Client) -> None:
    response = client.post("/search", json={"search": "acme"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "search"]


def test_idempotency_key_longer_than_255_is_422(client: httpx.Client) -> None:
    response = client.post("", json={"first_name": "A"}, headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


# A lone surrogate is valid JSON (an escape) but not Unicode: it can never be stored or echoed.
LONE_SURROGATE = '"A\\ud800"'


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", '{"first_name": ' + LONE_SURROGATE + "}"),
        ("POST", "", '{"first_name": "A", "custom_fields": {' + LONE_SURROGATE + ": 1}}"),
        ("POST", "", '{"first_name": "A", ' + LONE_SURROGATE + ": 1}"),
        ("POST", "/search", '{"search_term": ' + LONE_SURROGATE + "}"),
        ("POST", "/search", "{" + LONE_SURROGATE + ': "x"}'),
        ("POST", "/bulk", '{"contacts": [{"first_name": ' + LONE_SURROGATE + "}]}"),
        ("PATCH", "/{id}", '{"company": ' + LONE_SURROGATE + "}"),
        ("PATCH", "/{id}", '{"tags": [' + LONE_SURROGATE + "]}"),
    ],
)
def test_a_lone_surrogate_is_a_422_not_a_500(
    sb: SandboxServer, client: httpx.Client, method: str, path: str, body: str
) -> None:
    contact = create(client, first_name="Kept")
    response = client.request(
        method,
        path.format(id=contact["id"]),
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    if path == "/bulk":  # bulk answers 201 with the item's error, like any invalid item
        assert response.status_code == 201, response.text
        assert response.json()["failed"] == 1
    else:
        assert response.status_code == 422, response.text
        assert "surrogate" in response.text or "Unicode" in response.text
    assert [c["first_name"] for c in sb.admin.contacts("acme")] == ["Kept"]
