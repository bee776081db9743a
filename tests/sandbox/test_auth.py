"""Contract: bearer keys per tenant and scope (401 / 403 / 404, never an existence leak)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from lynkist_sandbox.auth import KeyRing
from pipelines.contact import API_BASE_PATH
from tests.sandbox.conftest import ApiFactory, create

#: (method, path, needed scope) for all seven endpoints; {id} is an existing contact.
ENDPOINTS = [
    ("GET", "", "read"),
    ("POST", "/search", "read"),
    ("GET", "/{id}", "read"),
    ("POST", "", "write"),
    ("POST", "/bulk", "write"),
    ("PATCH", "/{id}", "write"),
    ("DELETE", "/{id}", "write"),
]
BODIES = {
    ("POST", ""): {"first_name": "New"},
    ("POST", "/bulk"): {"contacts": [{"first_name": "New"}]},
    ("POST", "/search"): {},
    ("PATCH", "/{id}"): {"status": "x"},
}
SUCCESS = {"GET": 200, "PATCH": 200, "DELETE": 200, "POST": 201}


def success(method: str, path: str) -> int:
    return 200 if path == "/search" else SUCCESS[method]


def call(
    raw: httpx.Client, method: str, path: str, contact_id: str, headers: dict[str, str]
) -> httpx.Response:
    body = BODIES.get((method, path))
    url = API_BASE_PATH + path.replace("{id}", contact_id)
    return raw.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "_scope"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer lk_sandbox_unknown", "Bearer", "Basic dXNlcjpwYXNz", "lk_sandbox_x", ""],
)
def test_missing_or_unknown_key_is_401(
    sb: SandboxServer,
    raw: httpx.Client,
    client: httpx.Client,
    method: str,
    path: str,
    _scope: str,
    authorization: str | None,
) -> None:
    contact = create(client)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = call(raw, method, path, contact["id"], headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]
    assert client.get(f"/{contact['id']}").json() == contact


def test_a_key_with_wrong_case_or_extra_chars_is_401(sb: SandboxServer, raw: httpx.Client) -> None:
    key = sb.keys["acme"]["rw"]
    for variant in (key.upper(), key + "x", key[:-1], "x" + key):
        response = call(raw, "GET", "", "", {"Authorization": f"Bearer {variant}"})
        assert response.status_code == 401, variant


def test_the_scheme_is_case_insensitive(sb: SandboxServer, raw: httpx.Client) -> None:
    key = sb.keys["acme"]["ro"]
    assert call(raw, "GET", "", "", {"Authorization": f"bearer {key}"}).status_code == 200


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
@pytest.mark.parametrize("kind", ["rw", "ro", "wo"])
def test_scopes(
    sb: SandboxServer,
    raw: httpx.Client,
    client: httpx.Client,
    method: str,
    path: str,
    scope: str,
    kind: str,
) -> None:
    contact = create(client)
    headers = {"Authorization": f"Bearer {sb.keys['acme'][kind]}"}
    response = call(raw, method, path, contact["id"], headers)
    allowed = (
        kind == "rw" or (kind == "ro" and scope == "read") or (kind == "wo" and scope == "write")
    )
    if allowed:
        assert response.status_code == success(method, path), response.text
    else:
        assert response.status_code == 403
        assert response.json() == {"detail": f"This API key lacks the contacts:{scope} scope"}
        assert client.get(f"/{contact['id']}").json() == contact


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/{id}"), ("PATCH", "/{id}"), ("DELETE", "/{id}")]
)
def test_another_tenants_contact_is_404_never_403(
    sb: SandboxServer, raw: httpx.Client, api: ApiFactory, method: str, path: str
) -> None:
    theirs = create(api("acme"), first_name="Secret")
    headers = {"Authorization": f"Bearer {sb.keys['globex']['rw']}"}
    response = call(raw, method, path, theirs["id"], headers)
    assert response.status_code == 404
    unknown = call(raw, method, path, str(uuid.uuid4()), headers)
    assert response.json() == unknown.json()  # indistinguishable from a missing id
    assert api("acme").get(f"/{theirs['id']}").json() == theirs


def test_tenants_never_see_each_others_contacts(api: ApiFactory) -> None:
    create(api("acme"), first_name="Acme person", company="Acme")
    globex = api("globex")
    assert globex.get("").json()["pagination"]["total_items"] == 0
    assert globex.get("", params={"search": "acme"}).json()["data"] == []
    assert globex.post("/search", json={"search_term": "acme"}).json()["data"] == []


def test_auth_is_checked_before_the_body(sb: SandboxServer, raw: httpx.Client) -> None:
    url = API_BASE_PATH
    response = raw.post(url, content=b"{broken", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    ro = {"Authorization": f"Bearer {sb.keys['acme']['ro']}"}
    assert raw.post(url, content=b"{broken", headers=ro).status_code == 403


def test_keys_never_reach_the_request_log(
    sb: SandboxServer, raw: httpx.Client, client: httpx.Client
) -> None:
    create(client)
    client.get("")
    call(raw, "GET", "", "", {"Authorization": "Bearer lk_sandbox_guess"})
    log = sb.admin.requests()
    assert [entry["tenant"] for entry in log] == ["acme", "acme", None]
    dumped = json.dumps(log)
    for keys in sb.keys.values():
        for key in keys.values():
            assert key not in dumped
    assert "lk_sandbox_guess" not in dumped


def test_demo_tenants_have_distinct_random_keys(sb: SandboxServer) -> None:
    assert set(sb.keys) == {"acme", "globex"}
    keys = [k for kinds in sb.keys.values() for k in kinds.values()]
    assert all(set(kinds) == {"rw", "ro", "wo"} for kinds in sb.keys.values())
    assert len(set(keys)) == 6
    assert all(k.startswith("lk_sandbox_") and len(k) > 30 for k in keys)


def test_keyring_resolves_every_key_and_nothing_else() -> None:
    ring = KeyRing()
    for tenant, kinds in ring.keys.items():
        for kind, key in kinds.items():
            principal = ring.resolve(key)
            assert principal is not None and principal.tenant == tenant
            assert ("contacts:read" in principal.scopes) == (kind in ("rw", "ro"))
            assert ("contacts:write" in principal.scopes) == (kind in ("rw", "wo"))
    assert ring.resolve(None) is None
    assert ring.resolve("") is None
    assert ring.resolve("lk_sandbox_") is None
    assert "lk_sandbox" not in repr(ring.resolve(ring.keys["acme"]["rw"]))


def test_fixed_keys_can_be_configured() -> None:
    ring = KeyRing({"solo": {"ro": "lk_sandbox_fixed"}})
    principal = ring.resolve("lk_sandbox_fixed")
    assert principal is not None and principal.tenant == "solo"
    with pytest.raises(ValueError, match="unknown key kinds"):
        KeyRing({"solo": {"admin": "x"}})
