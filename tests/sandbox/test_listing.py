"""Contract: list and search — filters, pagination block, order, archived contacts hidden."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from lynkist_sandbox.db import Database
from lynkist_sandbox.store import ContactFilter, ContactStore
from tests.sandbox.conftest import create


def ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [c["id"] for c in page.json()["data"]]


def expected_order(contacts: list[dict[str, Any]]) -> list[str]:
    live = [c for c in contacts if c.get("archived_at") is None]
    return [c["id"] for c in sorted(live, key=lambda c: (c["created_at"], c["id"]), reverse=True)]


@pytest.mark.parametrize(
    ("n", "page", "limit", "count", "total_pages", "has_next", "has_prev"),
    [
        (45, 1, 20, 20, 3, True, False),
        (45, 2, 20, 20, 3, True, True),
        (45, 3, 20, 5, 3, False, True),
        (45, 4, 20, 0, 3, False, True),
        (45, 99, 20, 0, 3, False, True),
        (45, 1, 100, 45, 1, False, False),
        (45, 1, 45, 45, 1, False, False),
        (45, 1, 44, 44, 2, True, False),
        (45, 45, 1, 1, 45, False, True),
        (0, 1, 20, 0, 0, False, False),
        (0, 2, 20, 0, 0, False, True),
    ],
)
def test_pagination_block(
    sb: SandboxServer,
    client: httpx.Client,
    n: int,
    page: int,
    limit: int,
    count: int,
    total_pages: int,
    has_next: bool,
    has_prev: bool,
) -> None:
    if n:
        sb.admin.seed("acme", n)
    for response in (
        client.get("", params={"page": page, "limit": limit}),
        client.post("/search", params={"page": page, "limit": limit}, json={}),
    ):
        body = response.json()
        assert set(body) == {"data", "pagination"}
        assert body["pagination"] == {
            "page": page,
            "limit": limit,
            "total_items": n,
            "total_pages": total_pages,
            "has_next": has_next,
            "has_prev": has_prev,
        }
        assert total_pages == math.ceil(n / limit)
        assert len(body["data"]) == count


def test_default_page_is_1_and_limit_is_20(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.seed("acme", 25)
    pagination = client.get("").json()["pagination"]
    assert (pagination["page"], pagination["limit"], len(client.get("").json()["data"])) == (
        1,
        20,
        20,
    )


def test_pages_cover_every_live_contact_once_newest_first(
    sb: SandboxServer, client: httpx.Client
) -> None:
    sb.admin.seed("acme", 250, seed=3)
    victims = ids(client.get("", params={"limit": 5}))[1:4]
    for victim in victims:
        assert client.delete(f"/{victim}").status_code == 200
    create(client, first_name="Newest")
    seen: list[str] = []
    for page in range(1, 4):
        seen += ids(client.get("", params={"page": page, "limit": 100}))
    truth = sb.admin.contacts("acme")
    assert len(truth) == 251
    assert seen == expected_order(truth)
    assert len(seen) == 248 and not set(victims) & set(seen)
    assert client.get("", params={"limit": 1}).json()["data"][0]["first_name"] == "Newest"


def test_filtered_pages_use_the_same_order(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.seed("acme", 120, seed=5)
    truth = sb.admin.contacts("acme")
    leads = [c for c in truth if c["status"] == "lead"]
    assert leads
    seen: list[str] = []
    for page in (1, 2, 3):
        seen += ids(client.get("", params={"status": "lead", "page": page, "limit": 10}))
    assert seen[: len(leads)] == expected_order(leads)[:30]


def test_updates_do_not_move_a_contact(client: httpx.Client) -> None:
    first = create(client, first_name="First")
    second = create(client, first_name="Second")
    client.patch(f"/{first['id']}", json={"status": "customer"})
    assert ids(client.get("")) == [second["id"], first["id"]]


def test_ties_on_created_at_are_broken_by_id_descending() -> None:
    store = ContactStore(Database())
    ts = "2026-05-12T08:00:00.000000Z"
    rows = [
        {"id": f"00000000-0000-4000-8000-00000000000{i}", "first_name": "T", "created_at": ts}
        for i in range(5)
    ]
    assert store.insert_existing("acme", rows) == 5
    expected = [r["id"] for r in reversed(rows)]
    for flt in (ContactFilter(), ContactFilter(search="t")):
        docs, total = store.page("acme", flt, 1, 10)
        assert total == 5
        assert [d.split('"id":"')[1][:36] for d in docs] == expected
    # Deep pages slice the same order.
    docs, _ = store.page("acme", ContactFilter(), 2, 2)
    assert [d.split('"id":"')[1][:36] for d in docs] == expected[2:4]


PEOPLE: list[dict[str, Any]] = [
    {
        "first_name": "Anurag",
        "last_name": "Sharma",
        "email": "anurag@acme.test",
        "company": "Acme Corp",
    },
    {
        "first_name": "Lara",
        "last_name": "Croft",
        "email": "lara@tomb.test",
        "company": "Croft Manor",
    },
    {
        "first_name": "Zoë",
        "last_name": "Ångström",
        "email": "zoe@nordic.test",
        "company": "Nordic AB",
    },
    {
        "first_name": "Per%cent",
        "last_name": "Under_score",
        "email": "odd@chars.test",
        "company": None,
        "phone": "+15550001111",
        "job_title": "Acme fan",
        "status": "acmeish",
        "tags": ["acme"],
        "custom_fields": {"acme": "acme"},
    },
]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("anurag", {"Anurag"}),  # first_name
        ("ANURAG", {"Anurag"}),  # case-insensitive
        ("sharm", {"Anurag"}),  # last_name, substring
        ("tomb.test", {"Lara"}),  # email
        ("CORP", {"Anurag"}),  # company
        ("acme", {"Anurag"}),  # email + company, but not phone/job_title/status/tags/custom
        ("croft", {"Lara"}),  # last_name and company: listed once
        ("ångström", {"Zoë"}),  # Unicode case folding
        ("ÅNGSTRÖM", {"Zoë"}),
        ("zoë", {"Zoë"}),
        ("%", {"Per%cent"}),  # LIKE wildcards are literal
        ("_", {"Per%cent"}),
        ("5550001111", set()),  # phone is not searched
        ("nobody", set()),
        ("sharmacroft", set()),  # never matches across two fields or contacts
        ("anuragsharma", set()),
    ],
)
def test_search_is_a_case_insensitive_substring_of_four_fields(
    client: httpx.Client, term: str, expected: set[str]
) -> None:
    for person in PEOPLE:
        create(client, **person)
    for response in (
        client.get("", params={"search": term}),
        client.post("/search", json={"search_term": term}),
    ):
        names = {c["first_name"] for c in response.json()["data"]}
        assert names == expected
        assert response.json()["pagination"]["total_items"] == len(expected)


def test_empty_search_means_no_filter(client: httpx.Client) -> None:
    for person in PEOPLE:
        create(client, **person)
    assert client.get("", params={"search": ""}).json()["pagination"]["total_items"] == 4
    assert client.post("/search", json={"search_term": ""}).json()["pagination"]["total_items"] == 4


@pytest.mark.parametrize(
    ("status", "expected"),
    [("lead", {"A"}), ("Lead", {"B"}), ("leads", set()), ("lea", set()), ("customer", {"C"})],
)
def test_status_is_an_exact_match(client: httpx.Client, status: str, expected: set[str]) -> None:
    create(client, first_name="A", status="lead")
    create(client, first_name="B", status="Lead")
    create(client, first_name="C", status="customer")
    create(client, first_name="D")
    for response in (
        client.get("", params={"status": status}),
        client.post("/search", json={"status": status}),
    ):
        assert {c["first_name"] for c in response.json()["data"]} == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"tag": "india"}, {"A", "B"}),
        ({"tag": "saas"}, {"A"}),
        ({"tag": "Ind"}, set()),  # exact tag, not a substring
        ({"tag": "INDIA"}, set()),  # tags are case-sensitive labels
        ({"tag": "india", "status": "lead"}, {"A"}),
        ({"tag": "india", "search_term": "bee"}, {"B"}),
        ({"tag": "india", "search_term": "bee", "status": "lead"}, set()),
        ({"search_term": "a", "status": "lead"}, {"A"}),
        ({}, {"A", "B", "C"}),
    ],
)
def test_search_filters_combine(
    client: httpx.Client, body: dict[str, str], expected: set[str]
) -> None:
    create(client, first_name="A", status="lead", tags=["india", "saas"])
    create(client, first_name="B", last_name="Bee", status="customer", tags=["india"])
    create(client, first_name="C", status="lead", tags=["us"], custom_fields={"tag": "india"})
    response = client.post("/search", json=body)
    assert response.status_code == 200
    assert {c["first_name"] for c in response.json()["data"]} == expected
    assert response.json()["pagination"]["total_items"] == len(expected)


def test_archived_contacts_never_appear(client: httpx.Client) -> None:
    gone = create(client, first_name="Gone", status="lead", tags=["x"], company="Acme")
    kept = create(client, first_name="Kept", status="lead", tags=["x"], company="Acme")
    client.delete(f"/{gone['id']}")
    for response in (
        client.get(""),
        client.get("", params={"search": "acme"}),
        client.get("", params={"status": "lead"}),
        client.post("/search", json={"tag": "x"}),
        client.post("/search", json={"search_term": "gone"}),
    ):
        assert gone["id"] not in ids(response)
    assert ids(client.get("")) == [kept["id"]]


def test_page_and_limit_of_search_come_from_the_query(
    sb: SandboxServer, client: httpx.Client
) -> None:
    sb.admin.seed("acme", 30)
    response = client.post("/search", params={"page": 2, "limit": 7}, json={})
    assert response.json()["pagination"]["page"] == 2
    assert len(response.json()["data"]) == 7
    assert ids(response) == ids(client.get("", params={"page": 2, "limit": 7}))


@pytest.mark.parametrize("params", [{"page": 10**12}, {"page": 10**12, "status": "lead"}])
def test_huge_page_numbers_answer_an_empty_page(
    sb: SandboxServer, client: httpx.Client, params: dict[str, Any]
) -> None:
    sb.admin.seed("acme", 5)
    body = client.get("", params=params).json()
    assert body["data"] == []
    assert body["pagination"]["page"] == 10**12
    assert body["pagination"]["has_next"] is False and body["pagination"]["has_prev"] is True
