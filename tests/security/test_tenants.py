"""Tenant isolation, the whole matrix: another tenant's contact is invisible to every key.

``tests/sandbox/test_auth.py`` covers scopes per endpoint within a tenant and a read-write key of
another tenant on GET/PATCH/DELETE of a live contact. Here: every key kind (rw, ro, wo) of tenant
globex against acme's live and archived contacts, with valid and invalid bodies, compared with
a nonexistent id down to the headers; listing and search by every filter; no cross-tenant
conflict on emails (a 409 would reveal the address exists elsewhere); idempotency keys that
never replay another tenant's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH

#: Headers that legitimately differ between two answers.
VOLATILE = {"date", "x-request-id"}
#: A body per PATCH variant: valid, not allowed (unknown field), empty.
PATCH_BODIES: dict[str, dict[str, Any]] = {
    "valid": {"status": "stolen", "email": "thief@globex.test"},
    "unknown-field": {"owner": "globex"},
    "empty": {},
}


@pytest.fixture(scope="module")
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.base_url + API_BASE_PATH, timeout=30, trust_env=False
    ) as client:
        yield client


def _auth(sb: SandboxServer, tenant: str, kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.keys[tenant][kind]}"}


def _create(http: httpx.Client, sb: SandboxServer, tenant: str, **fields: Any) -> dict[str, Any]:
    response = http.post("", json=fields, headers=_auth(sb, tenant, "rw"))
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()
    return contact


def _ground_truth(sb: SandboxServer, tenant: str) -> list[dict[str, Any]]:
    return sorted(sb.admin.contacts(tenant), key=lambda c: c["id"])


def _visible(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE}
    return response.status_code, response.content, headers


CALLS = [("GET", None), *[("PATCH", name) for name in PATCH_BODIES], ("DELETE", None)]


@pytest.mark.parametrize("archived", [False, True], ids=["live", "archived"])
@pytest.mark.parametrize(("method", "body"), CALLS, ids=[f"{m}-{b or ''}" for m, b in CALLS])
@pytest.mark.parametrize("kind", ["rw", "ro", "wo"])
def test_another_tenants_contact_is_indistinguishable_from_a_missing_one(
    sb: SandboxServer,
    http: httpx.Client,
    kind: str,
    method: str,
    body: str | None,
    archived: bool,
) -> None:
    theirs = _create(http, sb, "acme", first_name="Secret", email="secret@acme.test")
    if archived:
        assert http.delete(f"/{theirs['id']}", headers=_auth(sb, "acme", "rw")).status_code == 200
    before = _ground_truth(sb, "acme")
    headers = _auth(sb, "globex", kind)
    payload = PATCH_BODIES[body] if body else None

    answer = http.request(method, f"/{theirs['id']}", json=payload, headers=headers)
    missing = http.request(method, f"/{uuid.uuid4()}", json=payload, headers=headers)

    scope = "read" if method == "GET" else "write"
    allowed = kind == "rw" or kind == {"read": "ro", "write": "wo"}[scope]
    if allowed and body != "unknown-field":
        assert answer.status_code == 404, answer.text
    elif not allowed:
        assert answer.status_code == 403, answer.text
    assert _visible(answer) == _visible(missing)
    assert _ground_truth(sb, "acme") == before  # nothing changed, archived or restored


@pytest.mark.parametrize("kind", ["rw", "ro"])
def test_listing_and_search_never_show_another_tenants_contacts(
    sb: SandboxServer, http: httpx.Client, kind: str
) -> None:
    theirs = _create(
        http,
        sb,
        "acme",
        first_name="Hidden",
        last_name="Person",
        email="hidden@acme.test",
        phone="+14155550123",
        company="Acme Hidden",
        status="lead-h9",
        tags=["vip-h9"],
    )
    _create(http, sb, "globex", first_name="Own", company="Globex")
    archived = _create(http, sb, "acme", first_name="Gone", email="gone@acme.test")
    assert http.delete(f"/{archived['id']}", headers=_auth(sb, "acme", "rw")).status_code == 200
    lists: list[dict[str, str | int]] = [
        {},
        {"search": "hidden@acme.test"},
        {"search": "Hidden"},
        {"status": "lead-h9"},
        {"limit": 100, "page": 1},
    ]
    searches = [
        {},
        {"search_term": "hidden@acme.test"},
        {"search_term": "Acme Hidden"},
        {"tag": "vip-h9"},
        {"status": "lead-h9"},
        {"search_term": "Hidden", "tag": "vip-h9", "status": "lead-h9"},
    ]
    for params in lists:
        mine = http.get("", params=params, headers=_auth(sb, "acme", kind)).json()
        assert theirs["id"] in {c["id"] for c in mine["data"]}, params  # the query does match
        other = http.get("", params=params, headers=_auth(sb, "globex", kind)).json()
        assert theirs["id"] not in {c["id"] for c in other["data"]}, params
        assert all(c["company"] != "Acme Hidden" for c in other["data"])
        assert other["pagination"]["total_items"] == (
            1 if params in ({}, {"limit": 100, "page": 1}) else 0
        )
    for query in searches:
        mine = http.post("/search", json=query, headers=_auth(sb, "acme", kind)).json()
        assert theirs["id"] in {c["id"] for c in mine["data"]}, query
        other = http.post("/search", json=query, headers=_auth(sb, "globex", kind)).json()
        assert theirs["id"] not in {c["id"] for c in other["data"]}, query
        assert other["pagination"]["total_items"] == (1 if query == {} else 0)
    # archived ones neither, whatever the status filter
    other = http.get("", params={"search": "gone@acme.test"}, headers=_auth(sb, "globex", kind))
    assert other.json()["data"] == []


def test_the_same_email_in_another_tenant_is_no_conflict(
    sb: SandboxServer, http: httpx.Client
) -> None:
    """A conflict would tell globex that acme has this address."""
    theirs = _create(http, sb, "acme", first_name="Ann", email="ann@shared.test")
    before = _ground_truth(sb, "acme")
    mine = _create(http, sb, "globex", first_name="Ann too", email="ann@shared.test")
    bulk = http.post(
        "/bulk",
        json={"contacts": [{"first_name": "Bulk Ann", "email": "ann@shared.test"}]},
        headers=_auth(sb, "globex", "rw"),
    )
    assert bulk.status_code == 201 and bulk.json()["created"] == 1, bulk.text
    other = _create(http, sb, "globex", first_name="Bo", email="bo@globex.test")
    patched = http.patch(
        f"/{other['id']}", json={"email": "ann@shared.test"}, headers=_auth(sb, "globex", "rw")
    )
    assert patched.status_code == 200, patched.text
    assert mine["id"] != theirs["id"]
    assert _ground_truth(sb, "acme") == before


def test_idempotency_keys_never_replay_another_tenants_answer(
    sb: SandboxServer, http: httpx.Client
) -> None:
    key = {"Idempotency-Key": f"h9-{uuid.uuid4()}"}
    acme = http.post("", json={"first_name": "Acme"}, headers={**_auth(sb, "acme", "rw"), **key})
    assert acme.status_code == 201
    globex = http.post(
        "", json={"first_name": "Globex"}, headers={**_auth(sb, "globex", "rw"), **key}
    )
    assert globex.status_code == 201, globex.text
    assert globex.json()["first_name"] == "Globex" and globex.json()["id"] != acme.json()["id"]
    # replays stay within each tenant
    again = http.post("", json={"first_name": "Acme"}, headers={**_auth(sb, "acme", "rw"), **key})
    assert again.json() == acme.json()
    assert [c["first_name"] for c in sb.admin.contacts("acme")] == ["Acme"]
    assert [c["first_name"] for c in sb.admin.contacts("globex")] == ["Globex"]
