"""The push runner: map, clean, refresh the mirror, plan, execute, record.

Cost: one incremental sync (the API has no filter, so that is one listing scan), a read of only
the mirror rows the input can match (:mod:`.candidates`), ⌈creates/100⌉ bulk calls plus one
PATCH per changed row, one search per created row to learn its id (bulk answers carry none),
and one refresh of the views. Never a second scan.

Resume and no duplicates: a push keeps no journal of its own progress to replay. Each run
re-plans from a freshly synced mirror, so rows a killed (or failed) run already created now
match a contact and plan as ``unchanged`` (or ``update``), and only what is still missing is
sent. The one window this leaves — a bulk call still running on the server when the killed run
died — is closed by :class:`~pipelines.sink.journal.InflightJournal`: the next run waits until
such a call has surely ended before it refreshes. Within a run, a bulk call whose answer is
lost is reconciled (:mod:`pipelines.sink.reconcile`) before anything is resent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import dlt
import pandas as pd

from pipelines.client import LynkistClient, LynkistError
from pipelines.defaults import DEFAULT_PUSH_CONCURRENCY
from pipelines.sink.candidates import candidate_filter
from pipelines.sink.execute import Execution, RowResult, execute_plan
from pipelines.sink.journal import InflightJournal
from pipelines.sink.keys import MatchKey, parse_match_on
from pipelines.sink.plan import Plan, build_plan, input_keys
from pipelines.sink.reconcile import find_existing
from pipelines.sink.results import (
    load_results,
    results_frame,
    summarize,
    write_plan_csv,
    write_results_csv,
)
from pipelines.source.mirror import load_fingerprints
from pipelines.source.runner import SyncSettings, run_sync, warehouse_of
from pipelines.source.safety import (
    DEFAULT_MAX_DELETE_SHARE,
    ForeignMirrorError,
    check_same_tenant,
)
from pipelines.warehouse import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_FILE,
    Warehouse,
    WarehouseConfigError,
    count_live,
    create_views,
    empty_mirror,
    live_contacts,
    warehouse_lock,
)
from transforms.mapping import ColumnReport
from transforms.text import as_text_frame, without_blank_tail

log = logging.getLogger(__name__)

#: How long a push waits for another run (a sync, another push) to release the warehouse.
LOCK_WAIT_S = 30.0


class PushUsageError(ValueError):
    """A user mistake (bad mapping, bad match key, bad option): the message says what to fix."""


@dataclass
class PushReport:
    """What a push did.

    Attributes:
        run_id: Identifies the run in ``push_results``.
        results: One row per input row: run_id, row_number, match_key, action, outcome,
            http_status, error, contact_id, pushed_at (a dry run has outcome ``planned``).
        summary: Rows per outcome, per action, write calls, timings.
        plan: The plan that was executed (field-level diffs of updates in ``plan.rows``).
        dry_run: Nothing was written.
        fatal: Why the run stopped early (key rejected / lacks contacts:write), else None.
        unavailable: Why the writes stopped early because a call failed after its whole retry
            budget (API down or throttling hard), else None; the rows not written are
            ``failed`` and the next push sends them.
    """

    run_id: str
    results: pd.DataFrame
    summary: dict[str, Any]
    plan: Plan
    dry_run: bool = False
    fatal: str | None = None
    unavailable: str | None = None
    results_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every row was created, updated or unchanged (or planned, in a dry run)."""
        return (
            self.fatal is None
            and self.unavailable is None
            and not (self.summary.get("rejected", 0) or self.summary.get("failed", 0))
        )


@dataclass
class PushSettings:
    """Options of a push (see :func:`push_dataframe`)."""

    base_url: str
    api_key: str
    mapping: str | Mapping[str, str | None] = "auto"
    mapping_overrides: Mapping[str, str | None] | None = None
    match_on: str = "email"
    dry_run: bool = False
    refresh: bool = True
    clear_empty: bool = False
    tags: Literal["union", "replace"] = "union"
    default_region: str | None = "US"
    keep_invalid_phones: bool = False
    duckdb_path: str | Path = DEFAULT_DUCKDB_FILE
    destination: str = DEFAULT_DESTINATION
    dataset: str = DEFAULT_DATASET
    pipelines_dir: str | Path | None = None
    lock_wait_s: float = LOCK_WAIT_S
    results_path: str | Path | None = None
    max_concurrency: int = DEFAULT_PUSH_CONCURRENCY
    timeout: float = 30.0
    source: str | None = None
    max_rounds: int = 5
    inflight_grace_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The refresh's guard: largest share of the mirror one sync may mark deleted.
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE


def _prepare(
    df: pd.DataFrame, settings: PushSettings
) -> tuple[pd.DataFrame, pd.DataFrame, ColumnReport]:
    from transforms.cleaning import clean_contacts
    from transforms.mapping import apply_mapping

    try:
        mapped = apply_mapping(
            without_blank_tail(as_text_frame(df)),
            settings.mapping,
            overrides=settings.mapping_overrides,
        )
    except ValueError as exc:
        raise PushUsageError(str(exc)) from None
    try:
        cleaned = clean_contacts(
            mapped,
            default_region=settings.default_region,
            keep_invalid_phones=settings.keep_invalid_phones,
        )
    except ValueError as exc:
        raise PushUsageError(str(exc)) from None
    return cleaned.valid, cleaned.rejected, mapped.attrs["columns"]


def _check_match_column(match_on: MatchKey, valid: pd.DataFrame, rejected: pd.DataFrame) -> None:
    if match_on.kind == "custom":
        return
    columns = set(valid.columns) | set(rejected.columns)
    if (len(valid) or len(rejected)) and match_on.kind not in columns:
        raise PushUsageError(
            f"--match-on {match_on.label}: the export has no column mapped to {match_on.kind}; "
            "map one (--mapping FILE) or match on another key"
        )


def _sync_settings(settings: PushSettings) -> SyncSettings:
    return SyncSettings(
        base_url=settings.base_url,
        api_key=settings.api_key,
        duckdb_path=str(settings.duckdb_path),
        destination=settings.destination,
        dataset=settings.dataset,
        pipelines_dir=settings.pipelines_dir,
        max_concurrency=settings.max_concurrency,
        timeout=settings.timeout,
        # the push refreshes the views once, after recording its results
        create_views=False,
        max_delete_share=settings.max_delete_share,
    )


def _warehouse(settings: PushSettings) -> Warehouse:
    warehouse = warehouse_of(_sync_settings(settings))
    try:
        warehouse.check_writable()
    except WarehouseConfigError as exc:
        raise PushUsageError(str(exc)) from None
    return warehouse


def _refresh(settings: PushSettings) -> None:
    try:
        run_sync(_sync_settings(settings))
    except WarehouseConfigError as exc:
        raise PushUsageError(str(exc)) from None


def _read_mirror(warehouse: Warehouse, pipeline: dlt.Pipeline, where: str | None) -> pd.DataFrame:
    """The live contacts the plan needs: those ``where`` selects (see :mod:`.candidates`)."""
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return empty_mirror()  # nothing synced yet; do not create the file for a dry run
    return live_contacts(pipeline, where=where)


def _check_same_tenant(
    settings: PushSettings, warehouse: Warehouse, pipeline: dlt.Pipeline
) -> None:
    """``--no-refresh``: the mirror must be this key's tenant (the refresh's sync checks it
    otherwise), or every matched row would be a PATCH of another tenant's contact."""
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return
    with LynkistClient(
        settings.base_url, settings.api_key, timeout=settings.timeout, max_concurrency=4
    ) as client:
        try:
            check_same_tenant(client, load_fingerprints(pipeline))
        except ForeignMirrorError as exc:
            raise PushUsageError(str(exc)) from None


def _count_live(warehouse: Warehouse, pipeline: dlt.Pipeline) -> int:
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return 0
    return count_live(pipeline)


def _learn_created_ids(
    settings: PushSettings, plan: Plan, results: list[RowResult], match_on: MatchKey
) -> int:
    """Fill the ids of created rows by targeted look-ups; returns the requests made.

    ``POST /contacts/bulk`` answers carry no ids, so each created row is searched for by its
    most selective value and matched on its normalized key
    (:func:`pipelines.sink.reconcile.find_existing`): O(rows) requests, never a tenant scan. A
    row not found keeps no id (the next sync brings the contact into the mirror anyway).
    """
    missing = [r for r in results if r.outcome == "created" and not r.contact_id and r.match_key]
    if not missing:
        return 0
    planned = {row.row_number: row for row in plan.rows}
    rows = [planned[r.row_number] for r in missing if r.row_number in planned]
    with LynkistClient(
        settings.base_url,
        settings.api_key,
        timeout=settings.timeout,
        max_concurrency=settings.max_concurrency,
    ) as client:
        found = find_existing(
            client, rows, match_on=match_on, default_region=settings.default_region, scan=False
        )
        requests = client.stats.snapshot().requests
    for result in missing:
        result.contact_id = found.get(result.row_number)
    return requests


def push_dataframe(
    df: pd.DataFrame,
    *,
    base_url: str,
    api_key: str,
    mapping: str | Mapping[str, str | None] = "auto",
    match_on: str = "email",
    dry_run: bool = False,
    refresh: bool = True,
    clear_empty: bool = False,
    tags: Literal["union", "replace"] = "union",
    default_region: str | None = "US",
    duckdb_path: str | Path = DEFAULT_DUCKDB_FILE,
    destination: str = DEFAULT_DESTINATION,
    dataset: str = DEFAULT_DATASET,
    pipelines_dir: str | Path | None = None,
    results_path: str | Path | None = None,
    mapping_overrides: Mapping[str, str | None] | None = None,
    max_concurrency: int = DEFAULT_PUSH_CONCURRENCY,
    timeout: float = 30.0,
    source: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PushReport:
    """Upsert a CRM export (or any DataFrame of contacts) into Lynkist.

    Args:
        df: The export, one row per contact, columns as text.
        base_url: API root, e.g. ``https://api.lynkist.io``.
        api_key: Key with ``contacts:read`` and ``contacts:write``.
        mapping: ``auto``, ``hubspot``, ``salesforce``, ``lynkist`` or ``{column: target}``.
        match_on: ``email`` (default), ``phone``, ``id`` or ``custom_fields.<key>``.
        dry_run: Plan only: no write call.
        refresh: Sync the mirror before planning (and look up the ids of created rows after).
        clear_empty: Let empty cells clear stored values.
        tags: ``union`` (add to stored tags) or ``replace``.
        default_region: Region for phone numbers without a country code.
        duckdb_path: The warehouse (DuckDB file) holding the mirror and ``push_results``.
        destination: dlt destination of the warehouse (``duckdb`` or e.g. ``postgres``, with
            credentials from dlt's config).
        dataset: The warehouse's dataset (schema).
        pipelines_dir: dlt working directory (default: beside the DuckDB file, or
            ``.lynkist/pipelines`` in the working directory).
        results_path: Also write the results as CSV here.
        mapping_overrides: User mapping entries that win over the preset.
        max_concurrency: Upper bound of concurrent requests.
        timeout: Seconds per request.
        source: What is pushed, e.g. the export's file name: recorded with every result row
            (``push_results.source``) and shown in the report.
        progress: Called as ``progress(stage, done, total)``.

    Returns:
        The :class:`PushReport`.

    Raises:
        PushUsageError: Bad mapping, match key or option.
        LynkistError: The API could not be used (bad key, unreachable) during the refresh.
    """
    settings = PushSettings(
        base_url=base_url,
        api_key=api_key,
        mapping=mapping,
        mapping_overrides=mapping_overrides,
        match_on=match_on,
        dry_run=dry_run,
        refresh=refresh,
        clear_empty=clear_empty,
        tags=tags,
        default_region=default_region,
        duckdb_path=duckdb_path,
        destination=destination,
        dataset=dataset,
        pipelines_dir=pipelines_dir,
        results_path=results_path,
        max_concurrency=max_concurrency,
        timeout=timeout,
        source=source,
    )
    return run_push(df, settings, progress=progress)


def run_push(
    df: pd.DataFrame,
    settings: PushSettings,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> PushReport:
    """Run a push with explicit :class:`PushSettings` (see :func:`push_dataframe`)."""
    started = time.monotonic()
    try:
        match_key = parse_match_on(settings.match_on)
    except ValueError as exc:
        raise PushUsageError(str(exc)) from None
    if settings.tags not in ("union", "replace"):
        raise PushUsageError(f"--tags {settings.tags!r}: use union or replace")
    valid, rejected, columns = _prepare(df, settings)
    log.info(
        "columns: %s; ignored: %s",
        ", ".join(f"{c} -> {t}" for c, t in columns.mapped.items()) or "none",
        ", ".join(columns.ignored) or "none",
    )
    _check_match_column(match_key, valid, rejected)
    run_id = f"push-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    warehouse = _warehouse(settings)
    timings: dict[str, float] = {}
    warnings: list[str] = []

    def note(stage: str, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(stage, done, total)

    with warehouse_lock(warehouse, command="push", wait_s=settings.lock_wait_s):
        journal = InflightJournal(warehouse.state_path(".push-inflight.json"))
        grace = settings.inflight_grace_s
        waited = journal.wait_for_previous(settings.timeout if grace is None else grace)
        if waited:
            log.info("waited %.1fs for a bulk call of an interrupted push to end", waited)
        t0 = time.monotonic()
        if settings.refresh:
            note("refresh")
            _refresh(settings)
        mirror_pipeline = warehouse.pipeline()
        if not settings.refresh:
            _check_same_tenant(settings, warehouse, mirror_pipeline)
        where = candidate_filter(match_key, input_keys(valid, match_key, settings.default_region))
        mirror = _read_mirror(warehouse, mirror_pipeline, where)
        tenant_size = _count_live(warehouse, mirror_pipeline)
        timings["refresh_s"] = time.monotonic() - t0

        t0 = time.monotonic()
        plan = build_plan(
            valid,
            mirror,
            match_on=match_key,
            rejected=rejected,
            clear_empty=settings.clear_empty,
            tags=settings.tags,
            default_region=settings.default_region,
        )
        timings["plan_s"] = time.monotonic() - t0
        counts = plan.counts()
        if settings.dry_run:
            frame = plan.to_frame()
            frame.insert(0, "run_id", run_id)
            frame["outcome"] = "planned"
            results_path = None
            if settings.results_path is not None:
                # The plan, row by row: what a real run would do (and why rows are rejected).
                results_path = write_plan_csv(plan, settings.results_path)
            summary: dict[str, Any] = {
                "columns": columns.as_dict(),
                "total": len(plan.rows),
                "rejected": counts["reject"],
                "failed": 0,
                "planned": counts,
                "write_calls": 0,
                "duration_s": time.monotonic() - started,
                **timings,
            }
            return PushReport(run_id, frame, summary, plan, dry_run=True, results_path=results_path)

        t0 = time.monotonic()
        to_send = counts["create"] + counts["update"]
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            note("push", done, len(plan.rows))

        try:
            with LynkistClient(
                settings.base_url,
                settings.api_key,
                timeout=settings.timeout,
                max_concurrency=settings.max_concurrency,
            ) as client:
                execution: Execution = execute_plan(
                    client,
                    plan,
                    default_region=settings.default_region,
                    max_rounds=settings.max_rounds,
                    settle_s=settings.timeout,
                    before_bulk=journal.mark_sent,
                    progress=advance,
                    tenant_size=tenant_size,
                )
                stats = client.stats.snapshot()
        finally:
            # execute_plan returns (or raises) only once no call is in flight any more; only
            # a killed process leaves the journal behind.
            journal.clear()
        timings["execute_s"] = time.monotonic() - t0

        results = execution.results
        created = sum(1 for r in results if r.outcome == "created")
        lookup_requests = 0
        if settings.refresh and created and not (execution.fatal or execution.unavailable):
            t0 = time.monotonic()
            note("lookup")
            try:
                lookup_requests = _learn_created_ids(settings, plan, results, match_key)
            except LynkistError as exc:
                # The writes are done and their outcomes known; only created ids are missing,
                # and the next sync brings the contacts into the mirror.
                warnings.append(f"could not look up the ids of the created contacts: {exc}")
            timings["lookup_s"] = time.monotonic() - t0

        frame = results_frame(run_id, results, source=settings.source)
        # The CSV first: the outcomes reach the user even if the warehouse load fails.
        results_path = None
        if settings.results_path is not None:
            try:
                results_path = write_results_csv(frame, settings.results_path)
            except OSError as exc:
                # The writes are done: their outcomes still go to push_results below.
                warnings.append(f"could not write the results CSV {settings.results_path}: {exc}")
        t0 = time.monotonic()
        try:
            results_pipeline = warehouse.pipeline(warehouse.push_pipeline_name)
            load_results(results_pipeline, frame)
            # The sync after the push rebuilt the views before push_results had this run (or
            # existed at all): refresh them so the push_* views show it right away.
            create_views(results_pipeline)
        except Exception as exc:  # dlt wraps destination errors in many types
            warnings.append(f"could not record the results in push_results: {exc}")
        timings["record_s"] = time.monotonic() - t0
    summary = {
        "columns": columns.as_dict(),
        **summarize(frame),
        "planned": counts,
        "to_send": to_send,
        "write_calls": stats.writes,
        "bulk_calls": execution.stats.bulk_calls,
        "patch_calls": execution.stats.patch_calls,
        "unknown_batches": execution.stats.unknown_batches,
        "reconciled_found": execution.stats.reconciled_found,
        "resent": execution.stats.resent,
        "requests": stats.requests,
        "lookup_requests": lookup_requests,
        "retries": stats.retries,
        "throttled": stats.throttled,
        "duration_s": time.monotonic() - started,
        **timings,
    }
    for warning in warnings:
        log.warning(warning)
    return PushReport(
        run_id,
        frame,
        summary,
        plan,
        fatal=execution.fatal,
        unavailable=execution.unavailable,
        results_path=results_path,
        warnings=warnings,
    )
