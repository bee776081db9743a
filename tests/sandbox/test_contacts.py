"""Contract: the contact object, create / get / update / delete (reference rows, over HTTP)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from tests.sandbox.conftest import ApiFactory, create
from transforms.contact import CONTACT_FIELDS

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FULL = {
    "first_name": "Anurag",
    "last_name": "Sharma",
    "phone": "+919999999999",
    "email": "anurag@acme.test",
    "company": "Acme Corp",
    "job_title": "Founder",
    "status": "lead",
    "tags": ["india", "saas"],
    "custom_fields": {"plan": "starter", "seats": 3, "nested": {"a": [1, None]}},
}


def parse_ts(value: str) -> datetime:
    assert TS.match(value), value
    return datetime.fromisoformat(value)


def test_create_returns_the_full_contact_object(client: httpx.Client) -> None:
    before = datetime.now(UTC)
    response = client.post("", json=FULL)
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    contact = response.json()
    assert list(contact) == list(CONTACT_FIELDS)
    assert uuid.UUID(contact["id"]).version == 4
    assert {k: contact[k] for k in FULL} == FULL
    assert contact["updated_at"] is None
    created = parse_ts(contact["created_at"])
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC) + timedelta(seconds=1)


def test_create_with_only_first_name_fills_defaults(client: httpx.Client) -> None:
    contact = create(client, first_name="Lara")
    assert contact["tags"] == [] and contact["custom_fields"] == {}
    for field in ("last_name", "phone", "email", "company", "job_title", "status", "updated_at"):
        assert contact[field] is None


def test_get_returns_what_create_returned(client: httpx.Client) -> None:
    contact = create(client, **FULL)
    response = client.get(f"/{contact['id']}")
    assert response.status_code == 200
    assert response.json() == contact


def test_get_by_id_still_passes_the_log_the_key_check_and_the_faults(
    sb: SandboxServer, client: httpx.Client, api_key: str
) -> None:
    """GET by id skips FastAPI's routing (the hottest read); nothing in front of it."""
    contact = create(client, first_name="Fast")
    url = f"{sb.base_url}/api/v1/public/contacts/{contact['id']}"
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{url}/", headers={"Authorization": f"Bearer {api_key}"}).json() == contact
    sb.admin.set_faults(error_5xx=1.0)
    assert client.get(f"/{contact['id']}").status_code >= 500
    sb.admin.set_faults(error_5xx=0.0)
    logged = [(r["method"], r["path"], r["status"]) for r in sb.admin.requests()][-3:]
    path = f"/api/v1/public/contacts/{contact['id']}"
    assert [entry[:2] for entry in logged] == [("GET", path)] * 3
    assert logged[0][2] == 401 and logged[1][2] == 200 and logged[2][2] >= 500


@pytest.mark.parametrize(
    "contact_id", ["604a6057-b93f-4001-b0b9-15727405267d", "not-a-uuid", "search"]
)
def test_get_unknown_id_is_404(client: httpx.Client, contact_id: str) -> None:
    response = client.get(f"/{contact_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Contact not found"}


def test_patch_is_partial_and_sets_updated_at(client: httpx.Client) -> None:
    contact = create(client, **FULL)
    time.sleep(0.002)
    response = client.patch(
        f"/{contact['id']}", json={"status": "customer", "tags": ["india", "saas", "paid"]}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["status"] == "customer"
    assert updated["tags"] == ["india", "saas", "paid"]
    unchanged = set(FULL) - {"status", "tags"}
    assert {k: updated[k] for k in unchanged} == {k: contact[k] for k in unchanged}
    assert updated["id"] == contact["id"]
    assert updated["created_at"] == contact["created_at"]
    assert parse_ts(updated["updated_at"]) > parse_ts(contact["created_at"])
    assert client.get(f"/{contact['id']}").json() == updated


@pytest.mark.parametrize("field", ["last_name", "phone", "email", "company", "job_title", "status"])
def test_patch_null_clears_a_nullable_field(client: httpx.Client, field: str) -> None:
    contact = create(client, **FULL)
    updated = client.patch(f"/{contact['id']}", json={field: None}).json()
    assert updated[field] is None
    assert all(updated[k] == contact[k] for k in FULL if k != field)


@pytest.mark.parametrize("field", ["first_name", "tags", "custom_fields"])
def test_patch_null_on_a_non_nullable_field_is_422(client: httpx.Client, field: str) -> None:
    contact = create(client, **FULL)
    response = client.patch(f"/{contact['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert client.get(f"/{contact['id']}").json() == contact


def test_patch_empty_string_first_name_is_422(client: httpx.Client) -> None:
    contact = create(client)
    response = client.patch(f"/{contact['id']}", json={"first_name": ""})
    assert response.status_code == 422
    assert client.get(f"/{contact['id']}").json()["first_name"] == "Ann"


def test_patch_replaces_custom_fields_and_tags_wholesale(client: httpx.Client) -> None:
    contact = create(client, **FULL)
    updated = client.patch(f"/{contact['id']}", json={"custom_fields": {"x": 1}, "tags": []}).json()
    assert updated["custom_fields"] == {"x": 1}
    assert updated["tags"] == []


def test_empty_patch_changes_nothing(client: httpx.Client) -> None:
    contact = create(client)
    response = client.patch(f"/{contact['id']}", json={})
    assert response.status_code == 200
    assert response.json() == contact


def test_second_patch_moves_updated_at_forward(client: httpx.Client) -> None:
    contact = create(client)
    first = client.patch(f"/{contact['id']}", json={"status": "lead"}).json()
    time.sleep(0.002)
    second = client.patch(f"/{contact['id']}", json={"status": "customer"}).json()
    assert parse_ts(second["updated_at"]) > parse_ts(first["updated_at"])


def test_patch_unknown_id_is_404(client: httpx.Client) -> None:
    response = client.patch(f"/{uuid.uuid4()}", json={"status": "x"})
    assert response.status_code == 404


def test_delete_archives_softly(sb: SandboxServer, client: httpx.Client) -> None:
    contact = create(client, **FULL)
    other = create(client, first_name="Other")
    response = client.delete(f"/{contact['id']}")
    assert response.status_code == 200
    assert response.json() == {"message": "Contact deleted"}
    assert client.get(f"/{contact['id']}").status_code == 404
    assert client.delete(f"/{contact['id']}").status_code == 404
    assert client.patch(f"/{contact['id']}", json={"status": "x"}).status_code == 404
    listed = client.get("", params={"limit": 100}).json()
    assert [c["id"] for c in listed["data"]] == [other["id"]]
    assert listed["pagination"]["total_items"] == 1
    searched = client.post("/search", json={"search_term": "anurag"}).json()
    assert searched["data"] == []
    # The row is kept (soft delete): the ground truth still has it, marked archived.
    truth = {c["id"]: c for c in sb.admin.contacts("acme")}
    assert truth[contact["id"]]["archived_at"] is not None
    parse_ts(truth[contact["id"]]["archived_at"])
    assert truth[other["id"]]["archived_at"] is None
    assert {k: truth[contact["id"]][k] for k in FULL} == FULL


def test_trailing_slash_is_served_like_no_slash(sb: SandboxServer, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    base = sb.base_url + "/api/v1/public/contacts"
    created = httpx.post(base + "/", json={"first_name": "Slash"}, headers=headers)
    assert created.status_code == 201
    listed = httpx.get(base + "/", headers=headers)
    assert listed.json()["data"][0]["id"] == created.json()["id"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_json_body_is_read_whatever_the_content_type(
    client: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("", content=b'{"first_name": "Curl"}', headers=headers)
    assert response.status_code == 201
    assert response.json()["first_name"] == "Curl"


def test_unicode_round_trips(client: httpx.Client) -> None:
    fields: dict[str, Any] = {
        "first_name": "Zoë",
        "last_name": "Ångström",
        "company": "株式会社",
        "custom_fields": {"ключ": "значение"},
    }
    contact = create(client, **fields)
    assert {k: contact[k] for k in fields} == fields
    assert client.get(f"/{contact['id']}").json() == contact


def test_api_factory_gives_independent_tenants(api: ApiFactory) -> None:
    acme = create(api("acme"), first_name="A")
    globex = create(api("globex"), first_name="G")
    assert [c["id"] for c in api("acme").get("").json()["data"]] == [acme["id"]]
    assert [c["id"] for c in api("globex").get("").json()["data"]] == [globex["id"]]
