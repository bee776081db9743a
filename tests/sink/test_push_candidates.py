"""The push reads only candidate rows of the mirror, and still finds every match.

Stored values are spelled differently from the input (phone formats, an extension, a vanity
number, upper-case ids, a custom field): the SQL pre-filter must keep them all, on DuckDB and
PostgreSQL alike, so none of them is planned as a create (a duplicate).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink import push_dataframe
from pipelines.sink.candidates import MAX_FILTERED_KEYS, candidate_filter
from pipelines.sink.keys import MatchKey
from tests.plugins.postgres import postgres_dsn  # noqa: F401

STORED = [
    {"first_name": "Ann", "phone": "(415) 555-0100"},
    {"first_name": "Ben", "phone": "+44 20 7946 0000"},
    {"first_name": "Cat", "phone": "415.555.0199 x12"},
    {"first_name": "Dan", "phone": "1-800-FLOWERS"},
    {"first_name": "Eve", "phone": "+1 212 555 0123", "custom_fields": {"hs_id": "42"}},
    {"first_name": "Fay", "phone": "+1 212 555 0124", "custom_fields": {"other": "hs_id"}},
]
PHONE_ROWS = [
    {"first_name": "Ann", "phone": "+1 415 555 0100"},
    {"first_name": "Ben", "phone": "+442079460000"},
    {"first_name": "Cat", "phone": "+1 (415) 555-0199"},
    {"first_name": "Dan", "phone": "+1 800 356 9377"},
    {"first_name": "New", "phone": "+1 415 555 0111"},
]


def _plan(sb: SandboxServer, tmp_path: Path, rows: list[dict[str, Any]], **kw: Any) -> list[str]:
    report = push_dataframe(
        pd.DataFrame(rows, dtype=object),
        base_url=sb.base_url,
        api_key=sb.keys["acme"]["rw"],
        dry_run=True,
        duckdb_path=tmp_path / "w.duckdb",
        pipelines_dir=tmp_path / "dlt",
        **kw,
    )
    return [str(a) for a in report.results.sort_values("row_number")["action"]]


def _check_matches(sb: SandboxServer, tmp_path: Path, **where: Any) -> None:
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        assert client.bulk_create(STORED).failed == 0
    actions = _plan(sb, tmp_path, PHONE_ROWS, mapping="lynkist", match_on="phone", **where)
    assert actions[:4] != ["create"] * 4 and "create" not in actions[:4], actions
    assert actions[4] == "create"

    custom = [{"first_name": "Eve", "hs": "42"}, {"first_name": "Gus", "hs": "43"}]
    mapping = {"first_name": "first_name", "hs": "custom_fields.hs_id"}
    actions = _plan(sb, tmp_path, custom, mapping=mapping, match_on="custom_fields.hs_id", **where)
    assert actions[0] != "create" and actions[1] == "create", actions

    eve = next(c for c in sb.admin.contacts("acme") if c["first_name"] == "Eve")
    by_id = [{"id": eve["id"].upper(), "first_name": "Eve"}]
    assert _plan(sb, tmp_path, by_id, mapping="lynkist", match_on="id", **where) == ["unchanged"]


def test_candidates_find_every_spelling_on_duckdb(sb: SandboxServer, tmp_path: Path) -> None:
    _check_matches(sb, tmp_path)


@pytest.mark.postgres
def test_candidates_find_every_spelling_on_postgres(
    sb: SandboxServer,
    tmp_path: Path,
    postgres_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    _check_matches(sb, tmp_path, destination="postgres", dataset=f"cand_{uuid.uuid4().hex[:8]}")


def test_filter_shape() -> None:
    email = MatchKey("email")
    assert candidate_filter(email, []) == "FALSE"
    assert candidate_filter(email, ["o'neil@x.test"]) == "lower(trim(email)) IN ('o''neil@x.test')"
    assert candidate_filter(email, [f"{i}@x.test" for i in range(MAX_FILTERED_KEYS + 1)]) is None
    assert candidate_filter(MatchKey("phone"), ["no digits"]) is None
