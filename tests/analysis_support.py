"""A demo warehouse built the real way, for the views, report and notebook tests.

Seeds the shared sandbox, adds contacts the data-quality views must catch (duplicate emails
and phones, non-E.164 phones, no email and no phone), syncs, archives / updates / creates a few
contacts, pushes a small export (with invalid rows) and syncs again. The ground truth is the
sandbox's own view of every contact (``admin.contacts``) at the time of the last sync.

Import the fixtures explicitly where needed::

    from tests.analysis_support import duckdb_warehouse  # noqa: F401
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.client import LynkistClient
from pipelines.sandbox import SandboxServer
from pipelines.sink.results import load_results
from transforms.views import create_views

SEED_CONTACTS = 500

#: Contacts the data-quality checks must flag (created through the API like any other).
ANOMALIES: list[dict[str, Any]] = [
    {"first_name": "Dup", "last_name": "One", "email": "dup.person@acme.test", "phone": None},
    {"first_name": "Dup", "last_name": "Two", "email": "Dup.Person@acme.test", "phone": None},
    {"first_name": "Dup", "last_name": "Three", "email": "DUP.PERSON@ACME.TEST", "phone": None},
    {"first_name": "Tel", "last_name": "One", "phone": "+14155550100", "tags": ["dq"]},
    {"first_name": "Tel", "last_name": "Two", "phone": "+1 415-555-0100", "tags": ["dq"]},
    {"first_name": "Local", "phone": "(415) 555-0199", "status": "lead"},
    {"first_name": "Zero", "phone": "+0123456789", "status": "prospect"},
    {"first_name": "Nobody", "email": None, "phone": None, "status": "prospect"},
    {"first_name": "Nobody", "last_name": "Else", "status": None},
]

#: A small Lynkist-format export for the push: valid creates, an update, invalid rows.
PUSH_ROWS: list[dict[str, str]] = [
    {"first_name": "Pushed", "last_name": "New", "email": "pushed.new@acme.test"},
    {"first_name": "Pushed", "last_name": "Other", "email": "pushed.other@acme.test"},
    {"first_name": "Pushed", "last_name": "Third", "email": "pushed.third@acme.test"},
    {"first_name": "", "last_name": "Nameless", "email": "nameless@acme.test"},
    {"first_name": "Bad", "last_name": "Email", "email": "not-an-email"},
    {"first_name": "Bad", "last_name": "Email2", "email": "also@not@valid"},
]


@dataclass
class DemoWarehouse:
    """A synced warehouse plus what it should contain."""

    pipeline: dlt.Pipeline
    duckdb_path: Path | None
    contacts: list[dict[str, Any]]  # every contact incl. archived ("archived_at" set)
    push_results: pd.DataFrame  # one row per input row of every push
    views: list[str]  # what create_views returned

    @property
    def live(self) -> list[dict[str, Any]]:
        """The contacts the API still lists."""
        return [c for c in self.contacts if c["archived_at"] is None]


def reset_sandbox(sandbox: SandboxServer) -> None:
    """Same clean state as the ``sb`` fixture gives a test."""
    admin = sandbox.admin
    admin.reset()
    admin.set_faults()
    admin.set_settings(
        latency_ms=0.0, rate_limit=None, burst=None, retry_after="seconds", idempotent_bulk=False
    )
    admin.set_clock_offset(0.0)
    admin.clear_requests()


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _interim_sync(pipeline: dlt.Pipeline, contacts: list[dict[str, Any]]) -> None:
    """INTERIM until pipelines.sync lands: load contacts shaped per the warehouse contract."""
    rows = [
        {
            **{
                k: c[k]
                for k in (
                    "id",
                    "first_name",
                    "last_name",
                    "phone",
                    "email",
                    "company",
                    "job_title",
                    "status",
                )
            },
            "tags": json.dumps(c["tags"]),
            "custom_fields": json.dumps(c["custom_fields"]),
            "created_at": _parse_ts(c["created_at"]),
            "updated_at": _parse_ts(c["updated_at"]),
            "is_deleted": c["archived_at"] is not None,
            "deleted_at": _parse_ts(c["archived_at"]),
        }
        for c in contacts
    ]
    hints: dict[str, Any] = {
        "tags": {"data_type": "json"},
        "custom_fields": {"data_type": "json"},
        "updated_at": {"data_type": "timestamp", "timezone": True},
        "deleted_at": {"data_type": "timestamp", "timezone": True},
        "job_title": {"data_type": "text"},
        "company": {"data_type": "text"},
    }
    resource = dlt.resource(
        pa.Table.from_pylist(rows),
        name="contacts",
        primary_key="id",
        write_disposition="merge",
        columns=hints,
    )
    pipeline.run(resource)


def _interim_push_results() -> pd.DataFrame:
    """INTERIM until the real push: push_results rows shaped like pipelines.sink's."""
    when = datetime.now(UTC)
    outcomes = [
        ("create", "created", 201, None),
        ("create", "created", 201, None),
        ("create", "created", 201, None),
        ("reject", "rejected", None, "first_name: must be at least 1 character"),
        ("reject", "rejected", None, "email: 'not-an-email' is not a valid email address"),
        ("reject", "rejected", None, "email: 'also@not@valid' is not a valid email address"),
    ]
    return pd.DataFrame(
        {
            "run_id": ["interim-run"] * len(outcomes),
            "row_number": pd.array(range(1, len(outcomes) + 1), dtype="Int64"),
            "match_key": [r["email"] for r in PUSH_ROWS],
            "action": [o[0] for o in outcomes],
            "outcome": [o[1] for o in outcomes],
            "http_status": pd.array([o[2] for o in outcomes], dtype="Int64"),
            "error": pd.Series([o[3] for o in outcomes], dtype=object),
            "contact_id": pd.Series([None] * len(outcomes), dtype=object),
            "pushed_at": pd.Series([when] * len(outcomes), dtype="datetime64[us, UTC]"),
        }
    )


def _make_pipeline(
    tmp: Path, destination: str, pg_dsn: str | None
) -> tuple[dlt.Pipeline, Path | None]:
    if destination == "duckdb":
        path = tmp / "warehouse.duckdb"
        dest: Any = dlt.destinations.duckdb(str(path))
    else:
        path, dest = None, dlt.destinations.postgres(credentials=pg_dsn)
    # a private dataset on PostgreSQL: the server is shared with other tests of the session
    dataset = "lynkist" if destination == "duckdb" else f"lynkist_views_{uuid.uuid4().hex[:8]}"
    pipeline = dlt.pipeline(
        f"lynkist_{destination}",
        destination=dest,
        dataset_name=dataset,
        pipelines_dir=str(tmp / "dlt"),
    )
    return pipeline, path


def build_warehouse(
    sandbox: SandboxServer, tmp: Path, destination: str = "duckdb", pg_dsn: str | None = None
) -> DemoWarehouse:
    """Seed, sync, change, push and sync again; return the warehouse and its ground truth."""
    reset_sandbox(sandbox)
    sandbox.admin.seed("acme", SEED_CONTACTS, seed=1)
    seeded = sandbox.admin.contacts("acme")
    pipeline, path = _make_pipeline(tmp, destination, pg_dsn)
    with LynkistClient(sandbox.base_url, sandbox.keys["acme"]["rw"]) as client:
        result = client.bulk_create(
            [{k: v for k, v in a.items() if v is not None} for a in ANOMALIES]
        )
        assert result.failed == 0, result.errors
        _interim_sync(pipeline, sandbox.admin.contacts("acme"))
        for contact in seeded[:7]:
            client.delete_contact(contact["id"])
        client.delete_contact(  # archiving one duplicate leaves the other two still ambiguous
            next(c["id"] for c in sandbox.admin.contacts("acme") if c["last_name"] == "Three")
        )
        for contact in seeded[10:13]:
            client.update_contact(contact["id"], {"status": "customer", "tags": ["upgraded"]})
        client.create_contact({"first_name": "Late", "tags": ["upgraded", "late"]})
    push_results = _interim_push_results()
    load_results(pipeline, push_results)
    _interim_sync(pipeline, sandbox.admin.contacts("acme"))
    views = create_views(pipeline)
    return DemoWarehouse(pipeline, path, sandbox.admin.contacts("acme"), push_results, views)


@pytest.fixture(scope="session")
def duckdb_warehouse(
    sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> DemoWarehouse:
    """A demo DuckDB warehouse (built once per session)."""
    return build_warehouse(sandbox, tmp_path_factory.mktemp("wh-duckdb"))


@pytest.fixture(scope="session")
def postgres_warehouse(
    sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str
) -> Iterator[DemoWarehouse]:
    """The same demo in PostgreSQL (dataset dropped afterwards)."""
    warehouse = build_warehouse(
        sandbox, tmp_path_factory.mktemp("wh-postgres"), "postgres", postgres_dsn
    )
    yield warehouse
    with warehouse.pipeline.sql_client() as client:
        client.drop_dataset()
