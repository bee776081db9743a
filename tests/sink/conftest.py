"""Helpers of the sink tests: stored contacts, CRM-style exports and their expected outcome."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient

COMPARED = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "job_title",
    "status",
    "custom_fields",
)
WRITES = ("POST", "PATCH", "DELETE")


@pytest.fixture
def client(sb: SandboxServer, api_key: str) -> Iterator[LynkistClient]:
    with LynkistClient(sb.base_url, api_key) as c:
        yield c


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"


def create_contacts(client: LynkistClient, contacts: list[dict[str, Any]]) -> None:
    for start in range(0, len(contacts), 100):
        result = client.bulk_create(contacts[start : start + 100])
        assert result.failed == 0, result.errors


def live_contacts(sb: SandboxServer, tenant: str = "acme") -> list[dict[str, Any]]:
    return [c for c in sb.admin.contacts(tenant) if not c.get("archived_at")]


def write_calls(sb: SandboxServer) -> list[dict[str, Any]]:
    """Write requests in the sandbox log (search is a read)."""
    return [
        r
        for r in sb.admin.requests()
        if r["method"] in WRITES and not r["path"].endswith("/search")
    ]


def assert_no_duplicates(contacts: list[dict[str, Any]], key: str = "email") -> None:
    counts = Counter(str(c[key]).lower() for c in contacts if c.get(key))
    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert not duplicated, f"duplicate contacts: {duplicated}"


@dataclass
class Scenario:
    """An export, the contacts stored before the push, and what the server must hold after."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # by email
    outcomes: Counter[str] = field(default_factory=Counter)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).fillna("")


def assert_server_matches(sb: SandboxServer, scenario: Scenario) -> None:
    """The tenant holds exactly the expected contacts, field for field (tags as sets)."""
    contacts = live_contacts(sb)
    assert_no_duplicates(contacts)
    by_email = {c["email"].lower(): c for c in contacts if c.get("email")}
    assert set(by_email) == set(scenario.expected)
    assert len(contacts) == len(scenario.expected)
    for email, expected in scenario.expected.items():
        actual = by_email[email]
        for name in COMPARED:
            assert actual.get(name) == expected.get(name), (email, name)
        assert sorted(actual.get("tags") or []) == sorted(expected.get("tags") or []), email


def _stored(i: int, crm_key: str) -> dict[str, Any]:
    return {
        "first_name": f"Stored{i}",
        "last_name": f"Person{i}",
        "email": f"stored{i}@acme.test",
        "phone": f"+1415555{i:04d}",
        "company": "Acme",
        "job_title": "Engineer",
        "status": "customer",
        "tags": ["vip"],
        "custom_fields": {crm_key: f"{crm_key[:2]}-{i}", "city": "Paris", "plan": "pro"},
    }


def hubspot_scenario(n_unchanged: int = 10, n_changed: int = 10, n_new: int = 15) -> Scenario:
    """HubSpot "export all contacts" labels, matched on email."""
    sc = Scenario()
    key = "hubspot_record_id"

    def row(c: dict[str, Any]) -> dict[str, str]:
        return {
            "Record ID": c["custom_fields"][key],
            "First Name": c["first_name"],
            "Last Name": c["last_name"] or "",
            "Email": c["email"],
            "Phone Number": c["phone"] or "",
            "Company Name": c["company"] or "",
            "Job Title": c["job_title"] or "",
            "Lifecycle Stage": "customer",
            "City": c["custom_fields"].get("city", ""),
        }

    for i in range(n_unchanged):
        c = _stored(i, key)
        sc.stored.append(c)
        r = row(c)
        r["Email"] = r["Email"].upper()  # matched case-insensitively
        sc.rows.append(r)
        sc.expected[c["email"]] = c
        sc.outcomes["unchanged"] += 1
    for i in range(n_unchanged, n_unchanged + n_changed):
        c = _stored(i, key)
        sc.stored.append(c)
        r = row(c)
        r["Company Name"] = "Initech"
        r["City"] = "Lyon"
        r["Phone Number"] = ""  # empty cell: keeps the stored phone
        sc.rows.append(r)
        sc.expected[c["email"]] = {
            **c,
            "company": "Initech",
            "custom_fields": {**c["custom_fields"], "city": "Lyon"},
        }
        sc.outcomes["updated"] += 1
    for i in range(n_new):
        email = f"new{i}@globex.test"
        sc.rows.append(
            {
                "Record ID": f"hs-new-{i}",
                "First Name": f"New{i}",
                "Last Name": "Comer",
                "Email": email,
                "Phone Number": f"(212) 555-{i:04d}",
                "Company Name": "Globex",
                "Job Title": "",
                "Lifecycle Stage": "marketingqualifiedlead",
                "City": "",
            }
        )
        sc.expected[email] = {
            "first_name": f"New{i}",
            "last_name": "Comer",
            "email": email,
            "phone": f"+1212555{i:04d}",
            "company": "Globex",
            "job_title": None,
            "status": "lead",
            "tags": [],
            "custom_fields": {key: f"hs-new-{i}"},
        }
        sc.outcomes["created"] += 1
    bad = [
        {"First Name": "Bad", "Email": "not-an-email"},
        {"First Name": "Badphone", "Email": "badphone@x.test", "Phone Number": "12"},
        {"First Name": "", "Last Name": "", "Email": "nofirst@x.test"},
        {"First Name": "NoKey", "Email": ""},
        {"First Name": "Twin", "Email": "twin@x.test"},
        {"First Name": "Twin2", "Email": "TWIN@x.test"},
    ]
    sc.rows.extend(bad)
    sc.outcomes["rejected"] += len(bad)
    return sc


def salesforce_scenario(n_unchanged: int = 8, n_changed: int = 8, n_new: int = 12) -> Scenario:
    """Salesforce Contact API names, matched on custom_fields.salesforce_id."""
    sc = Scenario()
    key = "salesforce_id"

    def row(c: dict[str, Any]) -> dict[str, str]:
        return {
            "Id": c["custom_fields"][key],
            "FirstName": c["first_name"],
            "LastName": c["last_name"],
            "Email": c["email"],
            "Phone": c["phone"],
            "Title": c["job_title"],
            "Account.Name": c["company"],
            "MailingCity": c["custom_fields"]["city"],
        }

    for i in range(n_unchanged):
        c = _stored(100 + i, key)
        sc.stored.append(c)
        sc.rows.append(row(c))
        sc.expected[c["email"]] = c
        sc.outcomes["unchanged"] += 1
    for i in range(n_changed):
        c = _stored(200 + i, key)
        sc.stored.append(c)
        r = row(c)
        r["Email"] = f"moved{i}@acme.test"  # the match key is the CRM id, so email may change
        r["Title"] = "Director"
        sc.rows.append(r)
        sc.expected[r["Email"]] = {**c, "email": r["Email"], "job_title": "Director"}
        sc.outcomes["updated"] += 1
    for i in range(n_new):
        email = f"sf{i}@initech.test"
        sc.rows.append(
            {
                "Id": f"003NEW{i:09d}",
                "FirstName": f"Sf{i}",
                "LastName": "Lead",
                "Email": email,
                "Phone": f"+44 20 7946 {i:04d}",
                "Title": "CTO",
                "Account.Name": "Initech",
                "MailingCity": "London",
            }
        )
        sc.expected[email] = {
            "first_name": f"Sf{i}",
            "last_name": "Lead",
            "email": email,
            "phone": f"+44207946{i:04d}",
            "company": "Initech",
            "job_title": "CTO",
            "status": None,
            "tags": [],
            "custom_fields": {key: f"003NEW{i:09d}", "city": "London"},
        }
        sc.outcomes["created"] += 1
    bad = [
        {"Id": "003BAD1", "FirstName": "Bad", "Email": "bad@@x"},
        {"Id": "", "FirstName": "NoId", "Email": "noid@x.test"},
        {"Id": "003TWIN", "FirstName": "T1", "Email": "t1@x.test"},
        {"Id": "003TWIN", "FirstName": "T2", "Email": "t2@x.test"},
    ]
    sc.rows.extend(bad)
    sc.outcomes["rejected"] += len(bad)
    return sc
