"""Demo contact generator: deterministic, complete, valid per the API's own rules."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest

from lynkist_sandbox.seed import generate_contacts
from transforms.contact import CONTACT_FIELDS, PHONE_MAX, normalize_email

NOW = datetime(2026, 5, 12, 8, 0, 0, tzinfo=UTC)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def contacts() -> list[dict[str, Any]]:
    return generate_contacts(3000, seed=7, now=NOW)


def test_deterministic_for_a_seed(contacts: list[dict[str, Any]]) -> None:
    assert generate_contacts(3000, seed=7, now=NOW) == contacts
    other = generate_contacts(3000, seed=8, now=NOW)
    assert {c["id"] for c in other}.isdisjoint({c["id"] for c in contacts})
    # A naive `now` means UTC.
    assert generate_contacts(50, seed=7, now=NOW.replace(tzinfo=None)) == generate_contacts(
        50, seed=7, now=NOW
    )


def test_every_field_has_the_api_shape(contacts: list[dict[str, Any]]) -> None:
    for c in contacts:
        assert tuple(c) == CONTACT_FIELDS
        assert uuid.UUID(c["id"]).version == 4
        assert isinstance(c["first_name"], str) and 1 <= len(c["first_name"]) <= 255
        for field in ("last_name", "company", "job_title"):
            assert c[field] is None or (isinstance(c[field], str) and c[field].strip())
        assert c["status"] in {"active", "lead", "customer", None}
        assert isinstance(c["tags"], list) and all(isinstance(t, str) for t in c["tags"])
        assert len(set(c["tags"])) == len(c["tags"])
        assert isinstance(c["custom_fields"], dict)
        assert ISO.match(c["created_at"])
        assert c["updated_at"] is None or ISO.match(c["updated_at"])
    assert len({c["id"] for c in contacts}) == len(contacts)


def test_phones_are_e164_from_several_countries(contacts: list[dict[str, Any]]) -> None:
    phones = [c["phone"] for c in contacts if c["phone"] is not None]
    assert 0.05 < 1 - len(phones) / len(contacts) < 0.3  # some contacts have no phone
    regions: Counter[str] = Counter()
    for phone in phones:
        assert len(phone) <= PHONE_MAX
        assert re.fullmatch(r"\+[1-9]\d{6,14}", phone)
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)
        regions[phonenumbers.region_code_for_number(number) or "?"] += 1
    assert len(regions) >= 8
    assert len(set(phones)) > 0.95 * len(phones)


def test_emails_are_unique_and_valid_for_the_api(contacts: list[dict[str, Any]]) -> None:
    emails = [c["email"] for c in contacts if c["email"] is not None]
    assert 0.05 < 1 - len(emails) / len(contacts) < 0.3  # some contacts have no email
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert normalize_email(email) == email


def test_timestamps_and_never_updated_share(contacts: list[dict[str, Any]]) -> None:
    created = [parse(c["created_at"]) for c in contacts]
    assert created == sorted(created)  # oldest first
    assert all(NOW - timedelta(days=731) < t < NOW for t in created)
    assert created[-1] - created[0] > timedelta(days=600)  # spread over ~2 years
    never = [c for c in contacts if c["updated_at"] is None]
    assert 0.35 < len(never) / len(contacts) < 0.45
    for c in contacts:
        if c["updated_at"] is not None:
            assert parse(c["created_at"]) < parse(c["updated_at"]) <= NOW


def test_variety_of_statuses_tags_and_custom_fields(contacts: list[dict[str, Any]]) -> None:
    assert {c["status"] for c in contacts} == {"active", "lead", "customer", None}
    assert any(c["tags"] == [] for c in contacts) and any(len(c["tags"]) >= 3 for c in contacts)
    assert any(c["custom_fields"] == {} for c in contacts)
    keys = {k for c in contacts for k in c["custom_fields"]}
    assert {"plan", "source", "seats"} <= keys
    assert len({c["company"] for c in contacts if c["company"]}) > 100
    assert any(not c["first_name"].isascii() for c in contacts)  # accents, like real data


@pytest.mark.parametrize(("share", "expected_never"), [(0.0, 1.0), (1.0, 0.0)])
def test_updated_share_extremes(share: float, expected_never: float) -> None:
    rows = generate_contacts(200, seed=1, updated_share=share, now=NOW)
    assert sum(c["updated_at"] is None for c in rows) / len(rows) == expected_never


def test_default_now_is_never_in_the_future() -> None:
    rows = generate_contacts(100, seed=2)
    latest = max(parse(c["updated_at"] or c["created_at"]) for c in rows)
    assert latest <= datetime.now(UTC)


def test_edge_arguments() -> None:
    assert generate_contacts(0) == []
    with pytest.raises(ValueError, match="n must be"):
        generate_contacts(-1)
    with pytest.raises(ValueError, match="updated_share"):
        generate_contacts(10, updated_share=1.5)
