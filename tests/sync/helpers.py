"""Shared checks of the sync tests: the warehouse against the sandbox's ground truth."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pandas as pd

from lynkist_sandbox import SandboxServer
from pipelines.client import RetryPolicy
from pipelines.source.runner import SyncSettings, make_pipeline

TEXT_FIELDS = ("first_name", "last_name", "phone", "email", "company", "job_title", "status")
JSON_FIELDS = ("tags", "custom_fields")
TIME_FIELDS = ("created_at", "updated_at")

#: Retries fast enough for tests (the sandbox's faults are transient by construction).
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, budget=30.0)


def sync_settings(server: SandboxServer, db: Path, tenant: str = "acme", **kw: Any) -> SyncSettings:
    """Settings for a sync of ``tenant`` into ``db``: fast retries, views off (tested apart)."""
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("create_views", False)
    return SyncSettings(
        base_url=server.base_url, api_key=server.keys[tenant]["rw"], duckdb_path=str(db), **kw
    )


def _pipeline(pipeline_or_path: dlt.Pipeline | str | os.PathLike[str]) -> dlt.Pipeline:
    if isinstance(pipeline_or_path, dlt.Pipeline):
        return pipeline_or_path
    return make_pipeline(SyncSettings(duckdb_path=pipeline_or_path))


def warehouse_frame(pipeline_or_path: dlt.Pipeline | str | os.PathLike[str]) -> pd.DataFrame:
    """Every row of the contacts table, read through ``pipeline.dataset()`` into pandas.

    JSON columns are read as text: dlt turns PostgreSQL ``jsonb`` objects into one Arrow struct
    per column, which adds every key seen in any row (as null) to every row.
    """
    pipeline = _pipeline(pipeline_or_path)
    dataset = pipeline.dataset()
    columns = [
        f"CAST({name} AS TEXT) AS {name}" if name in JSON_FIELDS else name
        for name in dataset.schema.get_table_columns("contacts")
    ]
    frame = dataset(f"SELECT {', '.join(columns)} FROM contacts").df()
    assert frame is not None
    return frame


def _micros(value: Any) -> int | None:
    """ISO string / datetime / pandas Timestamp -> epoch microseconds (None for null)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    assert value.tzinfo is not None, f"timestamp without time zone: {value!r}"
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _flag(value: Any) -> bool:
    assert value is not None and not pd.isna(value), "is_deleted is null"
    return bool(value)


def _text(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def assert_warehouse_matches_server(
    pipeline_or_path: dlt.Pipeline | str | os.PathLike[str],
    sandbox: SandboxServer,
    tenant: str = "acme",
    *,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every live contact field for field, every archived one marked, nothing else.

    Args:
        pipeline_or_path: The sync's pipeline, or its DuckDB file (default settings).
        sandbox: The server holding the truth.
        tenant: Tenant whose contacts were synced.
        frame: The warehouse rows, when already read.

    Returns:
        The warehouse rows (for further checks).
    """
    rows = warehouse_frame(pipeline_or_path) if frame is None else frame
    truth = {c["id"]: c for c in sandbox.admin.contacts(tenant)}
    ids = rows["id"].tolist()
    assert len(ids) == len(set(ids)), "duplicate ids in the warehouse"
    stored = {r["id"]: r for r in rows.to_dict("records")}
    unknown = set(stored) - set(truth)
    assert not unknown, f"warehouse rows the server never had: {sorted(unknown)[:5]}"
    problems: list[str] = []
    for contact_id, contact in truth.items():
        row = stored.get(contact_id)
        if contact["archived_at"] is not None:
            if row is not None and not (_flag(row["is_deleted"]) and _micros(row["deleted_at"])):
                problems.append(f"{contact_id}: archived on the server, not marked deleted")
            continue
        if row is None:
            problems.append(f"{contact_id}: live on the server, missing from the warehouse")
            continue
        if _flag(row["is_deleted"]) or _micros(row["deleted_at"]) is not None:
            problems.append(f"{contact_id}: live on the server, marked deleted")
        for name in TEXT_FIELDS:
            if _text(row[name]) != contact[name]:
                problems.append(f"{contact_id}.{name}: {row[name]!r} != {contact[name]!r}")
        for name in JSON_FIELDS:
            if _json(row[name]) != contact[name]:
                problems.append(f"{contact_id}.{name}: {row[name]!r} != {contact[name]!r}")
        for name in TIME_FIELDS:
            if _micros(row[name]) != _micros(contact[name]):
                problems.append(f"{contact_id}.{name}: {row[name]!r} != {contact[name]!r}")
    assert not problems, f"{len(problems)} mismatches, e.g.:\n" + "\n".join(problems[:10])
    return rows
