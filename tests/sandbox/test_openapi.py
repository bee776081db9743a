"""The OpenAPI document matches what the server does (paths, statuses, schemas)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH
from tests.sandbox.conftest import create
from transforms.contact import CONTACT_FIELDS, NULLABLE_FIELDS, WRITABLE_FIELDS

BASE = API_BASE_PATH
OPERATIONS = {
    (BASE, "get"): {"200", "401", "403", "422", "429"},
    (BASE, "post"): {"201", "400", "401", "403", "422", "429"},
    (BASE + "/search", "post"): {"200", "400", "401", "403", "422", "429"},
    (BASE + "/bulk", "post"): {"201", "400", "401", "403", "422", "429"},
    (BASE + "/{contact_id}", "get"): {"200", "401", "403", "404", "429"},
    (BASE + "/{contact_id}", "patch"): {"200", "400", "401", "403", "404", "422", "429"},
    (BASE + "/{contact_id}", "delete"): {"200", "401", "403", "404", "429"},
}


@pytest.fixture(scope="module")
def spec(sandbox: SandboxServer) -> dict[str, Any]:
    response = httpx.get(sandbox.base_url + "/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def validator(spec: dict[str, Any], ref: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = {**ref, "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def response_schema(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path][method]["responses"][status]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_exactly_the_seven_endpoints_are_documented(spec: dict[str, Any]) -> None:
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert documented == set(OPERATIONS)
    assert not any(p.startswith("/_sandbox") for p in spec["paths"])


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_status_the_server_sends_is_documented(
    spec: dict[str, Any], path: str, method: str
) -> None:
    operation = spec["paths"][path][method]
    assert set(operation["responses"]) == OPERATIONS[path, method]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_bearer_scheme(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <key>`",
    }


def test_contact_schema_fields_and_nullability(spec: dict[str, Any]) -> None:
    contact = spec["components"]["schemas"]["Contact"]
    assert list(contact["properties"]) == list(CONTACT_FIELDS)
    assert set(contact["required"]) == set(CONTACT_FIELDS)
    for name, prop in contact["properties"].items():
        nullable = any(t.get("type") == "null" for t in prop.get("anyOf", []))
        assert nullable == (name in (*NULLABLE_FIELDS, "updated_at")), name


def test_create_schema(spec: dict[str, Any]) -> None:
    create_schema = spec["components"]["schemas"]["ContactCreate"]
    assert list(create_schema["properties"]) == list(WRITABLE_FIELDS)
    assert create_schema["required"] == ["first_name"]
    assert create_schema["additionalProperties"] is False
    first = create_schema["properties"]["first_name"]
    assert (first["minLength"], first["maxLength"]) == (1, 255)
    phone = create_schema["properties"]["phone"]["anyOf"][0]
    assert phone["maxLength"] == 20
    bulk = spec["components"]["schemas"]["BulkRequest"]["properties"]["contacts"]
    assert bulk["maxItems"] == 100
    assert bulk["items"] == {"$ref": "#/components/schemas/ContactCreate"}


def test_query_parameters(spec: dict[str, Any]) -> None:
    params = {p["name"]: p for p in spec["paths"][BASE]["get"]["parameters"]}
    assert set(params) == {"search", "status", "page", "limit"}
    assert params["page"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"] == {
        "type": "integer",
        "maximum": 100,
        "minimum": 1,
        "description": "Page size, 1-100",
        "default": 20,
        "title": "Limit",
    }
    create_params = {p["name"] for p in spec["paths"][BASE]["post"]["parameters"]}
    assert create_params == {"Idempotency-Key"}


def test_real_answers_validate_against_the_document(
    spec: dict[str, Any], sb: SandboxServer, client: httpx.Client, raw: httpx.Client
) -> None:
    contact = create(client, email="a@acme.test", tags=["x"], custom_fields={"k": [1, {"n": None}]})
    cid = contact["id"]
    ro = {"Authorization": f"Bearer {sb.keys['acme']['ro']}"}
    cases: list[tuple[str, str, httpx.Response]] = [
        (BASE, "get", client.get("")),
        (BASE, "get", client.get("", params={"page": 5})),
        (BASE, "post", client.post("", json={"first_name": "B"})),
        (BASE + "/search", "post", client.post("/search", json={"tag": "x"})),
        (
            BASE + "/bulk",
            "post",
            client.post("/bulk", json={"contacts": [{}, {"first_name": "C"}]}),
        ),
        (BASE + "/{contact_id}", "get", client.get(f"/{cid}")),
        (BASE + "/{contact_id}", "patch", client.patch(f"/{cid}", json={"status": "s"})),
        (BASE + "/{contact_id}", "delete", client.delete(f"/{cid}")),
        (BASE + "/{contact_id}", "get", client.get(f"/{cid}")),
        (BASE, "post", client.post("", content=b"{")),
        (BASE, "post", client.post("", json={"first_name": ""})),
        (BASE, "post", raw.post(BASE, json={"first_name": "x"})),
        (BASE, "post", raw.post(BASE, json={"first_name": "x"}, headers=ro)),
    ]
    sb.admin.set_settings(rate_limit=0.1, burst=1)
    client.get("")
    cases.append((BASE, "get", client.get("")))
    seen = set()
    for path, method, response in cases:
        status = str(response.status_code)
        assert status in spec["paths"][path][method]["responses"], (path, method, status)
        validator(spec, response_schema(spec, path, method, status)).validate(response.json())
        seen.add(status)
    assert seen == {"200", "201", "400", "401", "403", "404", "422", "429"}


def test_the_document_lists_the_sandbox_decisions(spec: dict[str, Any]) -> None:
    description = spec["info"]["description"]
    for topic in ("Order", "Timestamps", "total_pages", "extra=", "Idempotency-Key", "Bulk"):
        assert topic in description
