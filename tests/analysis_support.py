"""A demo warehouse built the real way, for the views, report and notebook tests.

Seeds the shared sandbox, adds contacts the data-quality views must catch (duplicate emails
and phones, non-E.164 phones, no email and no phone), syncs, archives / updates / creates a few
contacts, pushes a small export (with invalid rows) and syncs again. The ground truth is the
sandbox's own view of every contact (``admin.contacts``) at the time of the last sync.

Import the fixtures explicitly where needed::

    from tests.analysis_support import duckdb_warehouse  # noqa: F401
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink import push_dataframe
from pipelines.source.runner import SyncSettings, make_pipeline, run_sync
from pipelines.warehouse import DEFAULT_DUCKDB_FILE

SEED_CONTACTS = 500
PG_CREDENTIALS_ENV = "DESTINATION__POSTGRES__CREDENTIALS"

#: Contacts the data-quality checks must flag (created through the API like any other).
ANOMALIES: list[dict[str, Any]] = [
    {"first_name": "Dup", "last_name": "One", "email": "dup.person@acme.test", "phone": None},
    {"first_name": "Dup", "last_name": "Two", "email": "Dup.Person@acme.test", "phone": None},
    {"first_name": "Dup", "last_name": "Three", "email": "DUP.PERSON@ACME.TEST", "phone": None},
    {
        "first_name": "Tel",
        "last_name": "One",
        "phone": "+14155550100",
        "email": "tel@acme.test",
        "tags": ["dq"],
    },
    {"first_name": "Tel", "last_name": "Two", "phone": "+1 415-555-0100", "tags": ["dq"]},
    {"first_name": "Local", "phone": "(415) 555-0199", "status": "lead"},
    {"first_name": "Zero", "phone": "+0123456789", "status": "prospect"},
    {"first_name": "Nobody", "email": None, "phone": None, "status": "prospect"},
    {"first_name": "Nobody", "last_name": "Else", "status": None},
]

#: The name the push records as what it pushed (the report labels the run with it).
PUSH_SOURCE = "crm_export_2026-05.csv"
#: A small Lynkist-format export for the push: valid creates, an update, invalid rows.
PUSH_ROWS: list[dict[str, str]] = [
    {"first_name": "Pushed", "last_name": "New", "email": "pushed.new@acme.test"},
    {"first_name": "Pushed", "last_name": "Other", "email": "pushed.other@acme.test"},
    {"first_name": "Pushed", "last_name": "Third", "email": "pushed.third@acme.test"},
    {"first_name": "", "last_name": "Nameless", "email": "nameless@acme.test"},
    {"first_name": "Bad", "last_name": "Email", "email": "not-an-email"},
    {"first_name": "Bad", "last_name": "Email2", "email": "also@not@valid"},
    {"first_name": "Tel", "last_name": "One-Updated", "email": "tel@acme.test"},
    {"first_name": "Dup", "last_name": "Ambiguous", "email": "dup.person@acme.test"},
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


@contextlib.contextmanager
def _postgres_credentials(dsn: str | None) -> Iterator[None]:
    """dlt reads the postgres destination's credentials from the environment."""
    if dsn is None:
        yield
        return
    previous = os.environ.get(PG_CREDENTIALS_ENV)
    os.environ[PG_CREDENTIALS_ENV] = dsn
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PG_CREDENTIALS_ENV, None)
        else:
            os.environ[PG_CREDENTIALS_ENV] = previous


def build_warehouse(
    sandbox: SandboxServer, tmp: Path, destination: str = "duckdb", pg_dsn: str | None = None
) -> DemoWarehouse:
    """Seed, sync, change, push and sync again; return the warehouse and its ground truth."""
    sandbox.admin.restore_defaults()
    sandbox.admin.seed("acme", SEED_CONTACTS, seed=1)
    seeded = sandbox.admin.contacts("acme")
    base_url, api_key = sandbox.base_url, sandbox.keys["acme"]["rw"]
    duckdb_path = tmp / DEFAULT_DUCKDB_FILE
    settings = SyncSettings(
        base_url=base_url,
        api_key=api_key,
        duckdb_path=duckdb_path,
        destination=destination,
        # a private dataset on PostgreSQL: the server is shared with other tests of the session
        dataset="lynkist" if destination == "duckdb" else f"lynkist_views_{uuid.uuid4().hex[:8]}",
        pipelines_dir=tmp / "dlt",
    )
    with _postgres_credentials(pg_dsn):
        with LynkistClient(base_url, api_key) as client:
            result = client.bulk_create(
                [{k: v for k, v in a.items() if v is not None} for a in ANOMALIES]
            )
            assert result.failed == 0, result.errors
            run_sync(settings)
            for contact in seeded[:7]:
                client.delete_contact(contact["id"])
            client.delete_contact(  # archiving one duplicate leaves two still ambiguous
                next(c["id"] for c in sandbox.admin.contacts("acme") if c["last_name"] == "Three")
            )
            for contact in seeded[10:13]:
                client.update_contact(contact["id"], {"status": "customer", "tags": ["upgraded"]})
            client.create_contact({"first_name": "Late", "tags": ["upgraded", "late"]})
        push = push_dataframe(
            pd.DataFrame(PUSH_ROWS, dtype=object),
            base_url=base_url,
            api_key=api_key,
            mapping="lynkist",
            duckdb_path=duckdb_path,
            destination=destination,
            dataset=settings.dataset,
            pipelines_dir=tmp / "dlt",
            source=PUSH_SOURCE,
        )
        assert not push.warnings, push.warnings
        pipeline = make_pipeline(settings)
        summary = run_sync(settings)  # creates the views, push_* included
    if pg_dsn is not None:  # credentials in hand, so tests can query without the env variable
        pipeline = dlt.pipeline(
            pipeline.pipeline_name,
            pipelines_dir=pipeline.pipelines_dir,
            destination=dlt.destinations.postgres(credentials=pg_dsn),
            dataset_name=settings.dataset,
        )
    return DemoWarehouse(
        pipeline,
        duckdb_path if destination == "duckdb" else None,
        sandbox.admin.contacts("acme"),
        push.results,
        summary.views,
    )


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
