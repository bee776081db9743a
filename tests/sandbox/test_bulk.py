"""Contract: POST /contacts/bulk — ≤100 items, per-item errors with index, never aborts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer


def test_reference_example(sb: SandboxServer, client: httpx.Client) -> None:
    body = {
        "contacts": [
            {"first_name": "Anurag", "phone": "+919999999999"},
            {"first_name": "Lara", "email": "lara@acme.test"},
            {"first_name": ""},
        ]
    }
    response = client.post("/bulk", json=body)
    assert response.status_code == 201
    assert response.json() == {
        "total": 3,
        "created": 2,
        "failed": 1,
        "errors": [{"index": 2, "error": "first_name must be at least 1 character"}],
    }
    truth = sb.admin.contacts("acme")
    assert sorted(c["first_name"] for c in truth) == ["Anurag", "Lara"]
    lara = next(c for c in truth if c["first_name"] == "Lara")
    assert lara["email"] == "lara@acme.test" and lara["updated_at"] is None
    assert lara["tags"] == [] and lara["custom_fields"] == {}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({}, "first_name is required"),
        ({"first_name": "x" * 256}, "first_name must be at most 255 characters"),
        ({"first_name": "A", "phone": "1" * 21}, "phone must be at most 20 characters"),
        ({"first_name": "A", "email": "nope"}, "email is invalid"),
        ({"first_name": "A", "tags": [1]}, "tags.0"),
        ({"first_name": "A", "custom_fields": []}, "custom_fields"),
        ({"first_name": "A", "bogus": 1}, "bogus is not a contact field"),
        ("just a string", "item"),
        (None, "item"),
        ([{"first_name": "A"}], "item"),
    ],
)
def test_each_bad_item_is_reported_with_its_index(
    sb: SandboxServer, client: httpx.Client, item: Any, message: str
) -> None:
    body = {"contacts": [{"first_name": "Before"}, item, {"first_name": "After"}]}
    result = client.post("/bulk", json=body).json()
    assert result["total"] == 3 and result["created"] == 2 and result["failed"] == 1
    (error,) = result["errors"]
    assert error["index"] == 1
    assert message in error["error"]
    assert sorted(c["first_name"] for c in sb.admin.contacts("acme")) == ["After", "Before"]


def test_several_errors_on_one_item_are_joined(client: httpx.Client) -> None:
    result = client.post("/bulk", json={"contacts": [{"first_name": "", "phone": "1" * 30}]}).json()
    assert result["failed"] == 1
    error = result["errors"][0]["error"]
    assert "first_name" in error and "phone" in error


def test_all_failing_still_answers_201(sb: SandboxServer, client: httpx.Client) -> None:
    response = client.post("/bulk", json={"contacts": [{}, {"first_name": ""}]})
    assert response.status_code == 201
    assert response.json()["created"] == 0
    assert [e["index"] for e in response.json()["errors"]] == [0, 1]
    assert sb.admin.contacts("acme") == []


def test_exactly_100_items_are_accepted(sb: SandboxServer, client: httpx.Client) -> None:
    body = {"contacts": [{"first_name": f"P{i}"} for i in range(100)]}
    result = client.post("/bulk", json=body).json()
    assert result == {"total": 100, "created": 100, "failed": 0, "errors": []}
    assert client.get("").json()["pagination"]["total_items"] == 100


@pytest.mark.parametrize("n", [101, 250])
def test_more_than_100_items_is_422_and_creates_nothing(
    sb: SandboxServer, client: httpx.Client, n: int
) -> None:
    response = client.post("/bulk", json={"contacts": [{"first_name": "x"}] * n})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "contacts"]
    assert sb.admin.contacts("acme") == []


@pytest.mark.parametrize(
    "body",
    [{}, {"contacts": {"first_name": "A"}}, {"contacts": None}, {"contacts": [], "extra": 1}],
)
def test_bad_envelope_is_422(client: httpx.Client, body: dict[str, Any]) -> None:
    assert client.post("/bulk", json=body).status_code == 422


def test_empty_list_is_fine(client: httpx.Client) -> None:
    result = client.post("/bulk", json={"contacts": []}).json()
    assert result == {"total": 0, "created": 0, "failed": 0, "errors": []}


def test_created_items_are_listed_and_carry_no_ids_in_the_answer(client: httpx.Client) -> None:
    result = client.post("/bulk", json={"contacts": [{"first_name": "A"}, {"first_name": "B"}]})
    assert "id" not in result.text
    names = {c["first_name"] for c in client.get("").json()["data"]}
    assert names == {"A", "B"}


def test_bulk_ignores_idempotency_key_by_default(sb: SandboxServer, client: httpx.Client) -> None:
    body = {"contacts": [{"first_name": "Twice"}]}
    headers = {"Idempotency-Key": "bulk-1"}
    first = client.post("/bulk", json=body, headers=headers)
    second = client.post("/bulk", json=body, headers=headers)
    assert first.json() == second.json() == {"total": 1, "created": 1, "failed": 0, "errors": []}
    assert "idempotent-replayed" not in second.headers
    assert len(sb.admin.contacts("acme")) == 2


def test_bulk_honours_idempotency_key_when_enabled(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.set_settings(idempotent_bulk=True)
    body = {"contacts": [{"first_name": "Once"}, {"first_name": ""}]}
    headers = {"Idempotency-Key": "bulk-2"}
    first = client.post("/bulk", json=body, headers=headers)
    second = client.post("/bulk", json=body, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(sb.admin.contacts("acme")) == 1
    other = client.post("/bulk", json={"contacts": [{"first_name": "Else"}]}, headers=headers)
    assert other.status_code == 422
    assert len(sb.admin.contacts("acme")) == 1
    # No key: no idempotency, even with the option on.
    client.post("/bulk", json=body)
    assert len(sb.admin.contacts("acme")) == 2
