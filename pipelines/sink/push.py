"""The push runner: map, clean, refresh the mirror, plan, execute, record.

Cost: one incremental sync (the API has no filter, so that is one listing scan), a read of only
the mirror rows the input can match (:mod:`.candidates`), ⌈creates/100⌉ bulk calls plus one
PATCH per changed row, the cheaper of one search per created row and one more listing scan to
learn the created ids (bulk answers carry none; :func:`lookup_way`), and one refresh of the
views. What the push learned (PATCH answers, created contacts) is merged into the mirror
(:mod:`.learned`), so that a following ``--no-refresh`` push plans those rows as unchanged.

Resume and no duplicates: a push keeps no journal of its own progress to replay. Each run
re-plans from a freshly synced mirror, so rows a killed (or failed) run already created now
match a contact and plan as ``unchanged`` (or ``update``), and only what is still missing is
sent. The one window this leaves — a bulk call still running on the server when the earlier
run died or was interrupted (Ctrl-C, SIGTERM) — is closed by
:class:`~pipelines.sink.journal.InflightJournal`: every bulk call stays recorded until its
outcome is known, and the next run first settles those an earlier run left
(:func:`~pipelines.sink.reconcile.settle_previous`: looks their rows up, waiting for late
commits) before it refreshes and plans. Within a run, a bulk call whose answer is lost is
reconciled (:mod:`pipelines.sink.reconcile`) before anything is resent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from pipelines.client import LynkistClient
from pipelines.defaults import DEFAULT_PUSH_CONCURRENCY
from pipelines.sink import record
from pipelines.sink.candidates import candidate_filter
from pipelines.sink.cost import lookup_way
from pipelines.sink.execute import Execution, RowResult, execute_plan
from pipelines.sink.journal import InflightJournal
from pipelines.sink.keys import MatchKey, parse_match_on
from pipelines.sink.learned import contacts_table
from pipelines.sink.plan import Plan, build_plan, input_keys
from pipelines.sink.reconcile import (
    KEY_REPLAY_S,
    Settled,
    contact_key,
    find_existing_contacts,
    resend_keyed,
    settle_previous,
)
from pipelines.sink.results import (
    results_frame,
    results_table,
    summarize,
    write_plan_csv,
    write_results_csv,
)
from pipelines.source.mirror import Mirror
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
    SqlSource,
    Warehouse,
    WarehouseConfigError,
    count_live,
    create_views,
    empty_mirror,
    live_contacts,
    sample_live_ids,
    sql_source,
    warehouse_lock,
)
from transforms.mapping import ColumnReport
from transforms.text import as_text_frame, without_blank_tail

log = logging.getLogger(__name__)

#: How long a push waits for another run (a sync, another push) to release the warehouse.
LOCK_WAIT_S = 30.0

#: ``--no-refresh`` warns when the mirror's last sync is older than this: plans made against it
#: may miss contacts created or changed since (and create them again).
STALE_MIRROR_AFTER = timedelta(hours=24)

#: Live mirror ids the ``--no-refresh`` tenant check draws its few requests from.
TENANT_CHECK_SAMPLE = 32

#: The in-flight journal of a warehouse: ``Warehouse.state_path(INFLIGHT_SUFFIX)``.
INFLIGHT_SUFFIX = ".push-inflight.json"


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
    mapping_file: str | None = None

    def provenance(self, match_on: MatchKey) -> dict[str, str | None]:
        """What the run history records beside ``source``: the mapping and the match key."""
        mapping = self.mapping if isinstance(self.mapping, str) else "custom"
        if self.mapping_file:
            mapping += f"+{self.mapping_file}"
        return {"mapping": mapping, "match_on": match_on.label}


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


def _client(settings: PushSettings, *, max_concurrency: int | None = None) -> LynkistClient:
    """A client for the push's API, at the push's concurrency unless told otherwise."""
    return LynkistClient(
        settings.base_url,
        settings.api_key,
        timeout=settings.timeout,
        max_concurrency=max_concurrency or settings.max_concurrency,
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


def _read_mirror(warehouse: Warehouse, pipeline: SqlSource, where: str | None) -> pd.DataFrame:
    """The live contacts the plan needs: those ``where`` selects (see :mod:`.candidates`)."""
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return empty_mirror()  # nothing synced yet; do not create the file for a dry run
    return live_contacts(pipeline, where=where)


def _check_same_tenant(settings: PushSettings, warehouse: Warehouse, pipeline: SqlSource) -> None:
    """``--no-refresh``: the mirror must be this key's tenant (the refresh's sync checks it
    otherwise), or every matched row would be a PATCH of another tenant's contact."""
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return
    # A sample of live ids is all the check fetches from: reading every fingerprint of a
    # 200,000-contact mirror for it took ~0.7 s of a 100-row push.
    sample = Mirror()
    for contact_id in sample_live_ids(pipeline, TENANT_CHECK_SAMPLE):
        sample.add(contact_id, None, deleted=False)
    with _client(settings, max_concurrency=4) as client:
        try:
            check_same_tenant(client, sample)
        except ForeignMirrorError as exc:
            raise PushUsageError(str(exc)) from None


def _count_live(warehouse: Warehouse, pipeline: SqlSource) -> int:
    if warehouse.is_duckdb and not warehouse.duckdb_file.exists():
        return 0
    return count_live(pipeline)


@dataclass
class _Learned:
    """How the created rows' ids were learned: ``way`` (search, scan), its requests, and
    whether the mirror was synced by it (then it already holds every written contact)."""

    way: str = "none"
    requests: int = 0
    synced: bool = False


def _learn_created_ids(
    settings: PushSettings,
    warehouse: Warehouse,
    plan: Plan,
    results: list[RowResult],
    match_on: MatchKey,
    tenant_size: int,
) -> _Learned:
    """Fill the ids (and contacts) of created rows the cheaper way (:func:`lookup_way`).

    - ``scan``: one incremental sync (a listing scan that also merges every contact the push
      wrote into the mirror), then the created rows are matched on their normalized key
      against the mirror rows they can match (:mod:`.candidates`);
    - ``search``: one search per row at the push's concurrency, its results filtered on the
      normalized key (:func:`pipelines.sink.reconcile.find_existing_contacts`).

    A row not found keeps no id (the next sync brings the contact into the mirror anyway).
    """
    missing = [r for r in results if r.outcome == "created" and not r.contact_id and r.match_key]
    if not missing:
        return _Learned()
    created = sum(1 for r in results if r.outcome == "created")
    if lookup_way(len(missing), tenant_size + created) == "scan":
        summary = run_sync(_sync_settings(settings))
        keys = {str(r.match_key) for r in missing}
        mirror = live_contacts(warehouse.pipeline(), where=candidate_filter(match_on, keys))
        ids: dict[str, str] = {}
        region = settings.default_region
        for record in mirror.to_dict("records"):
            key = contact_key(match_on, {str(k): v for k, v in record.items()}, region)
            if key in keys:
                ids.setdefault(key, str(record["id"]))
        for result in missing:
            result.contact_id = ids.get(str(result.match_key))
        return _Learned("scan", summary.requests, synced=True)
    planned = {row.row_number: row for row in plan.rows}
    rows = [planned[r.row_number] for r in missing if r.row_number in planned]
    with _client(settings) as client:
        found = find_existing_contacts(
            client, rows, match_on=match_on, default_region=settings.default_region, scan=False
        )
        requests = client.stats.snapshot().requests
    for result in missing:
        match = found.get(result.row_number)
        if match is not None:
            result.contact_id = str(match["id"])
            result.contact = match
    return _Learned("search", requests)


def inflight_journal_path(settings: PushSettings) -> Path:
    """The in-flight journal of the settings' warehouse (bulk calls not yet resolved)."""
    return warehouse_of(_sync_settings(settings)).state_path(INFLIGHT_SUFFIX)


def _settle_previous(
    journal: InflightJournal, settings: PushSettings, note: Callable[[str, int, int], None]
) -> Settled:
    """Settle the calls an interrupted or killed push left unresolved.

    Bulk calls (and single creates too old to trust their key) are looked up, reads only; the
    single creates are sent again with their idempotency keys — except in a dry run, which
    writes nothing and leaves them for the next real push.
    """
    calls = journal.pending()
    if not calls:
        return Settled()
    note("settle", 0, 0)
    now = time.time()
    keyed = [c for c in calls if c.keyed and now - c.sent_at < KEY_REPLAY_S]
    looked_up = [c for c in calls if c not in keyed]
    if settings.dry_run:
        keyed = []
    grace = settings.timeout if settings.inflight_grace_s is None else settings.inflight_grace_s
    log.info("%d calls of an earlier push are unresolved: settling their rows", len(calls))
    settled = Settled()
    with _client(settings) as client:
        if keyed:
            settled.add(resend_keyed(client, keyed))
        if looked_up:
            settled.add(
                settle_previous(
                    client, looked_up, grace_s=grace, default_region=settings.default_region
                )
            )
    return settled


def _settled_message(settled: Settled) -> str:
    message = (
        f"an earlier push was interrupted with {len(settled.calls)} calls in flight "
        f"({settled.rows} rows): {len(settled.found)} of them exist now and are not sent again"
    )
    if settled.resent:
        message += (
            f"; {settled.resent} single creates were settled by sending them again with their "
            "Idempotency-Key (the server creates each at most once)"
        )
    if settled.waited_s:
        message += f" (waited {settled.waited_s:.1f}s for late commits)"
    return message


def _with_contacts(mirror: pd.DataFrame, contacts: list[dict[str, Any]]) -> pd.DataFrame:
    columns = list(mirror.columns)
    known = set(mirror["id"].astype(str)) if len(mirror) else set()
    extra = [
        {name: contact.get(name) for name in columns}
        for contact in contacts
        if str(contact.get("id")) not in known
    ]
    if not extra:
        return mirror
    frame = pd.DataFrame(extra, columns=columns, dtype=object)
    return pd.concat([mirror, frame], ignore_index=True) if len(mirror) else frame


def _record(
    warehouse: Warehouse,
    learnt: list[dict[str, Any]],
    frame: pd.DataFrame,
    provenance: Mapping[str, str | None],
    warnings: list[str],
) -> int:
    """Merge what the push learned into the mirror and append its results to
    ``push_results`` in one load, then refresh the views.

    By SQL in one DuckDB transaction where that applies (:mod:`.record`), else in one load of
    the push's dlt pipeline — one load, not one each: every dlt run and pipeline object costs a
    fixed ~0.3-0.6 s, most of a small push's time after its writes.

    Returns:
        The contacts merged into the mirror.
    """
    mirror = contacts_table(learnt)
    results = results_table(frame, provenance)
    merged = 0 if mirror is None else mirror.num_rows
    if record.write(warehouse, mirror, results):
        _refresh_views(sql_source(warehouse), warnings)
        return merged
    try:
        pipeline = record.load(warehouse, mirror, results)
    except Exception as exc:  # dlt wraps destination errors in many types
        warnings.append(
            "could not record the results in push_results nor merge the pushed contacts into "
            f"the mirror: {exc}"
        )
        return 0
    _refresh_views(pipeline, warnings)
    return merged


def _refresh_views(target: SqlSource, warnings: list[str]) -> None:
    try:
        # The sync after the push rebuilt the views before push_results had this run (or
        # existed at all): refresh them so the push_* views show it right away.
        create_views(target)
    except Exception as exc:  # dlt wraps destination errors in many types
        warnings.append(f"could not refresh the views: {exc}")


def _last_sync(warehouse: Warehouse, pipeline: SqlSource) -> datetime | None:
    """When the mirror was last loaded by a sync (not by a push's results), if ever."""
    try:
        with pipeline.sql_client() as client:
            loads = client.make_qualified_table_name("_dlt_loads")
            rows = list(
                client.execute_sql(
                    f"SELECT max(inserted_at) FROM {loads} WHERE status = 0 AND schema_name <> %s",
                    warehouse.push_pipeline_name,
                )
                or []
            )
    except Exception as exc:  # no dataset / no loads table: never synced
        log.info("no completed sync in the warehouse (%s)", exc)
        return None
    value = rows[0][0] if rows else None
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{int(hours // 24)} days" if hours >= 48 else f"{int(hours)} hours"


def _check_unrefreshed_mirror(warehouse: Warehouse, pipeline: SqlSource) -> str | None:
    """Refuse ``--no-refresh`` without a mirror; the warning for a stale one, else None.

    Without a mirror every row plans as a create, and contacts that already exist would be
    created again: that is never what a user means.

    Raises:
        PushUsageError: The warehouse holds no completed sync of this tenant.
    """
    missing = warehouse.is_duckdb and not warehouse.duckdb_file.exists()
    last = None if missing else _last_sync(warehouse, pipeline)
    if last is None:
        raise PushUsageError(
            f"no mirror of this tenant in {warehouse.describe()} (never synced): run "
            "`lynkist sync` first or drop --no-refresh"
        )
    age = datetime.now(UTC) - last
    if age <= STALE_MIRROR_AFTER:
        return None
    return (
        f"the mirror was last synced {_age_text(age)} ago (at {last:%Y-%m-%d %H:%M} UTC): "
        "contacts created or changed since are not in the plan — drop --no-refresh to sync "
        "first"
    )


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
        refresh: Sync the mirror before planning.
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
        journal = InflightJournal(warehouse.state_path(INFLIGHT_SUFFIX))
        t0 = time.monotonic()
        settled = _settle_previous(journal, settings, note)
        if settled.calls:
            warnings.append(_settled_message(settled))
        timings["settle_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        if settings.refresh:
            note("refresh")
            _refresh(settings)
        # Reads by DuckDB directly where it is the warehouse: no dlt for a --no-refresh push.
        mirror_pipeline = sql_source(warehouse)
        if not settings.refresh:
            _check_same_tenant(settings, warehouse, mirror_pipeline)
        where = candidate_filter(match_key, input_keys(valid, match_key, settings.default_region))
        if not settings.refresh:
            stale = _check_unrefreshed_mirror(warehouse, mirror_pipeline)
            if stale is not None:
                warnings.append(stale)
        mirror = _read_mirror(warehouse, mirror_pipeline, where)
        if settled.found and not settings.refresh:
            # Rows an interrupted push created: not in an unrefreshed mirror, yet they exist.
            mirror = _with_contacts(mirror, settled.found)
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

        # A first push records through dlt: its import overlaps the writes.
        importing = record.import_dlt_meanwhile(warehouse)
        # An interruption (Ctrl-C, SIGTERM) propagates from here with the journal untouched:
        # the calls it cut short are settled by the next push.
        with _client(settings) as client:
            execution: Execution = execute_plan(
                client,
                plan,
                default_region=settings.default_region,
                max_rounds=settings.max_rounds,
                settle_s=settings.timeout,
                journal=journal,
                progress=advance,
                tenant_size=tenant_size,
            )
            stats = client.stats.snapshot()
        if importing is not None:
            importing.join()  # before a lookup's sync or the record imports dlt themselves
        # The earlier push's calls are accounted for in this run's plan and outcomes.
        journal.resolve(settled.calls)
        timings["execute_s"] = time.monotonic() - t0

        results = execution.results
        created = sum(1 for r in results if r.outcome == "created")
        learned = _Learned()
        if created and not (execution.fatal or execution.unavailable):
            t0 = time.monotonic()
            note("lookup")
            try:
                learned = _learn_created_ids(
                    settings, warehouse, plan, results, match_key, tenant_size
                )
            except Exception as exc:  # LynkistError, or the scan's sync (dlt wraps many types)
                # The writes are done and their outcomes known; only created ids are missing,
                # and the next sync brings the contacts into the mirror.
                warnings.append(f"could not look up the ids of the created contacts: {exc}")
            timings["lookup_s"] = time.monotonic() - t0
        unlearned = sum(1 for r in results if r.outcome == "created" and not r.contact_id)
        if unlearned and not settings.refresh:
            warnings.append(
                f"{unlearned} created contacts could not be looked up and are not in the "
                "mirror yet: sync (or push without --no-refresh) before the next --no-refresh "
                "push"
            )

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
        learnt: list[dict[str, Any]] = []
        if not learned.synced:
            # What the push learned (PATCH answers, created contacts, rows an interrupted push
            # created) goes into the mirror: an unrefreshed push plans against it next.
            learnt = [r.contact for r in results if r.contact is not None]
            if not settings.refresh:
                learnt += settled.found
        merged = _record(warehouse, learnt, frame, settings.provenance(match_key), warnings)
        timings["record_s"] = time.monotonic() - t0
    summary = {
        "columns": columns.as_dict(),
        **summarize(frame),
        "planned": counts,
        "to_send": to_send,
        "write_calls": stats.writes,
        "create_way": execution.stats.create_way,
        "bulk_calls": execution.stats.bulk_calls,
        "single_calls": execution.stats.single_calls,
        "patch_calls": execution.stats.patch_calls,
        "unknown_batches": execution.stats.unknown_batches,
        "reconciled_found": execution.stats.reconciled_found,
        "resent": execution.stats.resent,
        "inflight_settled_rows": settled.rows,
        "inflight_found": len(settled.found),
        "inflight_resent": settled.resent,
        "requests": stats.requests,
        "lookup": learned.way,
        "lookup_requests": learned.requests,
        "mirror_merged": merged,
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
