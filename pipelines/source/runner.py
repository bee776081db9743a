"""The sync runner: the source into a warehouse, under its lock, with a summary.

``run_sync`` is what ``lynkist sync`` (and the push's refresh, the benchmarks, the demo) call::

    summary = run_sync(SyncSettings(base_url=url, api_key=key))

The warehouse side (pipeline per destination, lock, crash recovery, views) is
:mod:`pipelines.warehouse`. A sync takes the warehouse's lock without waiting: a second run
fails at once with :class:`~pipelines.warehouse.WarehouseLockedError`. Killed at any point, the
next run first loads whatever dlt had already extracted (merge on ``id`` makes that
idempotent), then syncs as usual.

On a DuckDB warehouse dlt has set up, the scan starts before dlt is even imported
(:mod:`pipelines.source.quick`): a run that finds the warehouse equal to the API ends there,
and one that finds something hands the scan, where it stands, to the dlt resource.

The API key is handed to the HTTP client only: it is not a dlt config value here, so it never
reaches dlt's state, trace or the warehouse, and ``SyncSettings`` leaves it out of its repr.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.client import LynkistClient, LynkistError, RetryPolicy
from pipelines.contact import DEFAULT_BASE_URL
from pipelines.defaults import DEFAULT_MAX_CONCURRENCY
from pipelines.imports import import_serialised
from pipelines.source import direct, quick
from pipelines.source.safety import DEFAULT_MAX_DELETE_SHARE, MirrorSafetyError
from pipelines.source.settings import MAX_RESCANS, PAGE_LIMIT, REJECTED_TABLE, TABLE_NAME
from pipelines.source.stats import SyncStats
from pipelines.warehouse import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    Warehouse,
    WarehouseConfigError,
    WarehouseError,
    create_views,
    failure_reason,
    finish_pending,
    load_id_config_key,
    start_clean,
    warehouse_lock,
)

if TYPE_CHECKING:  # dlt is imported on use: a run with nothing to write never needs it
    import dlt
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.pipeline.exceptions import PipelineStepFailed

__all__ = [
    "SyncConfigError",
    "SyncError",
    "SyncRefusedError",
    "SyncSettings",
    "SyncSummary",
    "make_pipeline",
    "run_sync",
    "warehouse_of",
]

ProgressCallback = Callable[[SyncStats], None]


class SyncError(WarehouseError):
    """A sync failed for a reason other than the API (destination, views, ...)."""


class SyncConfigError(SyncError, WarehouseConfigError):
    """The sync cannot start: bad settings (missing key, missing destination credentials)."""


class SyncRefusedError(SyncConfigError):
    """The run was refused to protect the warehouse (another tenant's mirror, too many
    deletions); nothing was written. A configuration problem: exit code 2."""


@dataclass
class SyncSettings:
    """Everything one sync needs.

    Attributes:
        base_url: API root (``https://api.lynkist.io`` or a sandbox URL).
        api_key: The tenant's key. Kept out of ``repr`` so it cannot leak into logs.
        duckdb_path: DuckDB warehouse file (destination ``duckdb`` only).
        destination: dlt destination name, e.g. ``duckdb`` or ``postgres`` (whose credentials
            come from dlt config: ``DESTINATION__POSTGRES__CREDENTIALS`` or secrets.toml).
        dataset: Dataset (schema) name.
        full_refresh: Drop the contacts table and rebuild it from the API.
        pipelines_dir: dlt working directory; default ``.lynkist/pipelines`` beside the DuckDB
            file, or under the current directory for other destinations.
        pipeline_name: dlt pipeline name; default derived from the warehouse and dataset.
        max_concurrency: Upper bound of concurrent API requests.
        timeout: Seconds per network operation.
        page_limit: Contacts per page (1-100).
        max_rescans: Extra full scans allowed when the listing shifts during a scan.
        create_views: Refresh the analysis views (:func:`pipelines.warehouse.create_views`).
        retry: The client's retry policy (default: the client's).
        max_delete_share: Largest share of the live mirror one run may mark deleted (0-1);
            a run over it stops with :class:`SyncRefusedError` and writes nothing.
        quick_start: Start the scan before importing dlt where that applies
            (:mod:`pipelines.source.quick`); False runs it inside dlt's extract from the start
            (the same warehouse, only slower: tests compare the two).
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)
    duckdb_path: str | os.PathLike[str] = DEFAULT_DUCKDB_FILE
    destination: str = "duckdb"
    dataset: str = DEFAULT_DATASET
    full_refresh: bool = False
    pipelines_dir: str | os.PathLike[str] | None = None
    pipeline_name: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    timeout: float = 30.0
    page_limit: int = PAGE_LIMIT
    max_rescans: int = MAX_RESCANS
    create_views: bool = True
    retry: RetryPolicy | None = field(default=None, repr=False)
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE
    quick_start: bool = True


@dataclass
class SyncSummary:
    """What one sync did.

    Attributes:
        new: Contacts loaded for the first time.
        updated: Contacts whose changes were loaded (including ones live again).
        deleted: Contacts newly marked ``is_deleted`` (each confirmed by a 404).
        unchanged: Contacts seen and identical to the warehouse: not rewritten.
        requests: HTTP requests sent (retries included).
        retries: Requests that were retries.
        pages: Listing pages read.
        duration_s: Wall time of the sync.
        rows_written: Rows dlt wrote to the contacts table (0 when nothing changed).
        restored: Of ``updated``, contacts marked deleted before and live again.
        throttled: 429 answers received.
        scan_passes: Full scans of the listing (more than 1 when it shifted during a scan).
        resumed_packages: Load packages left by an interrupted run and completed first.
        refetched: Contacts that changed again during the run after it had emitted them, loaded
            again by a short follow-up load.
        destination: Destination name.
        dataset: Dataset name.
        warehouse: DuckDB file path, or the destination name.
        views: Analysis views (re)created after the load.
        problems: Values stored other than as the API sent them, each ``{"id", "field",
            "reason"}``; details (raw record, first/last seen) in ``contacts_rejected``.
        set_aside_packages: One message per load package of an earlier run set aside (it
            failed ``MAX_RESUMES`` times, or ``--full-refresh`` started clean).
        renamed_fields: Unknown API fields stored under another column (field -> column).
        resolved_problems: Earlier problems that this run found gone.
    """

    new: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    requests: int = 0
    retries: int = 0
    pages: int = 0
    duration_s: float = 0.0
    rows_written: int = 0
    restored: int = 0
    throttled: int = 0
    scan_passes: int = 0
    resumed_packages: int = 0
    refetched: int = 0
    destination: str = "duckdb"
    dataset: str = "lynkist"
    warehouse: str = ""
    views: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    set_aside_packages: list[str] = field(default_factory=list)
    renamed_fields: dict[str, str] = field(default_factory=dict)
    resolved_problems: int = 0

    @property
    def warnings(self) -> list[str]:
        """One line per kind of trouble the run got past (for stderr and schedulers' logs)."""
        lines = list(self.set_aside_packages)
        if not self.problems:
            return lines
        ids = sorted({p["id"] for p in self.problems})
        named = ", ".join(
            f"{p['id']} {p['field']} ({p['reason']})" for p in self.problems[:MAX_NAMED_PROBLEMS]
        )
        more = len(self.problems) - MAX_NAMED_PROBLEMS
        tail = f" and {more} more" if more > 0 else ""
        lines.append(
            f"{len(ids)} contact(s) stored with values not as the API sent them, see "
            f"{self.dataset}.{REJECTED_TABLE}: {named}{tail}"
        )
        return lines

    @property
    def changed(self) -> bool:
        """Whether the sync wrote anything."""
        return self.rows_written > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``lynkist sync --json`` prints)."""
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        data["warnings"] = self.warnings
        return data


#: Problems named one by one in the warning line (the rest are counted).
MAX_NAMED_PROBLEMS = 5


def warehouse_of(settings: SyncSettings) -> Warehouse:
    """The :class:`~pipelines.warehouse.Warehouse` the settings point at."""
    return Warehouse(
        destination=settings.destination,
        duckdb_path=settings.duckdb_path,
        dataset=settings.dataset,
        pipelines_dir=settings.pipelines_dir,
        pipeline_name=settings.pipeline_name,
    )


def make_pipeline(settings: SyncSettings) -> dlt.Pipeline:
    """The sync pipeline of the settings' warehouse (created on first use).

    Raises:
        WarehouseConfigError: When the warehouse cannot be written or the destination is unknown.
    """
    warehouse = warehouse_of(settings)
    warehouse.check_writable()
    return warehouse.pipeline()


#: What a destination's credentials look like, for the hint when they are missing.
CREDENTIALS_EXAMPLES = {
    "postgres": "postgresql://user:password@host:5432/database",
    "redshift": "redshift://user:password@cluster.region.redshift.amazonaws.com:5439/database",
    "snowflake": "snowflake://user:password@account/database?warehouse=W&role=R",
    "mssql": "mssql://user:password@host:1433/database",
    "bigquery": "the service-account key file's JSON, or its project_id, private_key and "
    "client_email under [destination.bigquery.credentials]",
}


def _missing_config(exc: ConfigFieldMissingException, destination: str) -> SyncConfigError:
    fields = ", ".join(exc.fields)
    if "credentials" in exc.fields:
        env = f"DESTINATION__{destination.upper()}__CREDENTIALS"
        example = CREDENTIALS_EXAMPLES.get(destination)
        return SyncConfigError(
            f"destination {destination!r} needs credentials: set {env}"
            + (f" (e.g. {example})" if example else "")
            + f" or add `credentials` under [destination.{destination}] in .dlt/secrets.toml "
            "(see dlt's documentation of that destination)"
        )
    return SyncConfigError(f"destination {destination!r} is missing configuration: {fields}")


def _root_cause(exc: BaseException, destination: str) -> BaseException:
    """The API or configuration error inside dlt's wrappers, if any; otherwise ``exc``."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LynkistError | WarehouseError):
            return current
        if isinstance(current, MirrorSafetyError):
            return SyncRefusedError(str(current))
        if isinstance(current, ConfigFieldMissingException):
            return _missing_config(current, destination)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _refresh_views(pipeline: dlt.Pipeline) -> list[str]:
    try:
        return create_views(pipeline)
    except Exception as exc:
        raise SyncError(
            f"the contacts were loaded, but creating the analysis views failed: {exc}"
        ) from exc


def _extract_and_load(
    pipeline: dlt.Pipeline, source: Any, stats: SyncStats, *, refresh: Any = None
) -> int:
    """``pipeline.run(source)``, minus the normalize and load steps when nothing was emitted.

    A sync with no change still lists every contact, but a dlt load of an empty package (a
    destination transaction, the load and state records) is pure cost: the package is dropped
    instead. Returns the rows written to the contacts table.
    """
    if pipeline.config.restore_from_destination:
        pipeline.sync_destination()  # what run() does first
    with _lineage_from_source(pipeline):
        pipeline.extract(source, refresh=refresh)
    if stats.rows_emitted == 0 and not stats.problems and not stats.resolved and refresh is None:
        pipeline.abort_packages()
        return 0
    info = pipeline.normalize()
    pipeline.load()
    return int(info.row_counts.get(TABLE_NAME, 0))


@contextlib.contextmanager
def _lineage_from_source(pipeline: dlt.Pipeline) -> Iterator[None]:
    """dlt's own ``add_dlt_load_id`` off while the source, which fills ``_dlt_load_id`` itself
    (:func:`~pipelines.source.arrow.with_load_id`), is extracted: dlt's would replace the column
    with the same value, importing pandas to do so (~0.7 s). Back on after: the listener and
    the push load Arrow tables through the same pipeline and rely on it.
    """
    import dlt

    key = load_id_config_key(pipeline.pipeline_name)
    dlt.config[key] = False
    try:
        yield
    finally:
        dlt.config[key] = True


def _import_dlt_stack() -> None:
    """Import dlt (through our resource) once, one thread at a time (see
    :mod:`pipelines.imports`). pandas, which had the same problem, is no longer imported by a
    sync at all (see :func:`_lineage_from_source`)."""
    import_serialised("pipelines.source.resource")


def run_sync(
    settings: SyncSettings,
    *,
    progress: ProgressCallback | None = None,
    client: LynkistClient | None = None,
) -> SyncSummary:
    """Sync the contacts of ``settings.api_key``'s tenant into the warehouse.

    Args:
        settings: Where from, where to, how.
        progress: Called with the live :class:`SyncStats` after each page and phase change.
        client: A client to use (the caller closes it), e.g. one already listing the contacts
            (:meth:`LynkistClient.prefetch_contact_pages`); default: one built from
            ``settings``.

    Returns:
        The summary (``rows_written == 0`` when nothing changed on the server).

    Raises:
        WarehouseConfigError: Missing API key, unwritable warehouse, missing credentials.
        WarehouseLockedError: Another run holds this warehouse's lock.
        LynkistError: The API failed (authentication, permissions, exhausted retries, ...).
        SyncError: The destination or the views failed.
    """
    if not settings.api_key:
        raise SyncConfigError("no API key: set LYNKIST_API_KEY or pass --api-key")
    started = time.monotonic()
    warehouse = warehouse_of(settings)
    warehouse.check_writable()
    stats = SyncStats(on_progress=progress)
    summary = SyncSummary(
        destination=settings.destination, dataset=settings.dataset, warehouse=warehouse.describe()
    )
    opened: list[dlt.Pipeline] = []

    def pipeline() -> dlt.Pipeline:
        if not opened:
            _import_dlt_stack()
            opened.append(warehouse.pipeline())
        return opened[0]

    with warehouse_lock(warehouse, command="sync"), contextlib.ExitStack() as owned:
        api = client or owned.enter_context(
            LynkistClient(
                settings.base_url,
                settings.api_key,
                timeout=settings.timeout,
                max_concurrency=settings.max_concurrency,
                retry=settings.retry,
            )
        )
        scan = None
        if settings.quick_start and not settings.full_refresh:
            scan = _start_quick(settings, warehouse, api, stats, pipeline)
        if scan is not None and (
            scan.nothing_to_write() or _write_direct(warehouse, scan, summary)
        ):
            scan.rejected.count_into(stats)
            summary.views = scan.views if settings.create_views else []  # as they were
        else:
            _load(settings, pipeline(), api, stats, summary, scan)
        client_stats = api.stats.snapshot()
    summary.new = stats.new
    summary.updated = stats.updated
    summary.restored = stats.restored
    summary.deleted = stats.deleted
    summary.unchanged = stats.unchanged
    summary.pages = stats.pages
    summary.scan_passes = stats.scan_passes
    summary.problems = [
        {"id": p.contact_id, "field": p.field, "reason": p.reason} for p in stats.problems
    ]
    summary.renamed_fields = dict(stats.renamed)
    summary.resolved_problems = stats.resolved
    summary.requests = client_stats.requests
    summary.retries = client_stats.retries
    summary.throttled = client_stats.throttled
    summary.duration_s = time.monotonic() - started
    return summary


def _start_quick(
    settings: SyncSettings,
    warehouse: Warehouse,
    api: LynkistClient,
    stats: SyncStats,
    pipeline: Callable[[], dlt.Pipeline],
) -> quick.StartedScan | None:
    """The scan begun without dlt (:mod:`pipelines.source.quick`), when it applies."""
    try:
        return quick.start(
            warehouse,
            api,
            stats,
            open_pipeline=pipeline,
            with_views=settings.create_views,
            page_limit=settings.page_limit,
            max_rescans=settings.max_rescans,
            max_delete_share=settings.max_delete_share,
        )
    except MirrorSafetyError as exc:  # as dlt's path reports it: nothing was written
        raise SyncRefusedError(str(exc)) from None


def _write_direct(warehouse: Warehouse, scan: quick.StartedScan, summary: SyncSummary) -> bool:
    """Finish the scan and write what it found by SQL (:mod:`pipelines.source.direct`);
    False when it must go through dlt (the rows found so far are then loaded first)."""
    try:
        scan.gather(direct.MAX_ROWS, direct.MAX_BYTES)
    except MirrorSafetyError as exc:  # as dlt's path reports it: nothing was written
        raise SyncRefusedError(str(exc)) from None
    if not direct.applies(scan):
        return False
    written = direct.write(warehouse, scan)
    if written is None:
        return False
    summary.rows_written = written
    return True


def _load(
    settings: SyncSettings,
    pipeline: dlt.Pipeline,
    api: LynkistClient,
    stats: SyncStats,
    summary: SyncSummary,
    scan: quick.StartedScan | None,
) -> None:
    """Finish what an interrupted run left, run the source (or continue ``scan``) through dlt,
    and refresh the views."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from pipelines.source.resource import lynkist_source

    try:
        pending = start_clean(pipeline) if settings.full_refresh else finish_pending(pipeline)
        summary.resumed_packages = pending.loaded
        summary.set_aside_packages = pending.set_aside
        source = lynkist_source(
            settings.base_url,
            settings.api_key,
            client=api,
            stats=stats,
            full_refresh=settings.full_refresh,
            page_limit=settings.page_limit,
            max_rescans=settings.max_rescans,
            max_delete_share=settings.max_delete_share,
            started=scan,
        )
        summary.rows_written = _extract_and_load(
            pipeline,
            source,
            stats,
            refresh="drop_resources" if settings.full_refresh else None,
        )
        summary.refetched = len(set(stats.conflict_ids))
        if stats.conflict_ids:
            # Contacts that changed again after this run emitted them: load their
            # current version now (one load never carries two versions of a row).
            follow_up_stats = SyncStats()
            follow_up = lynkist_source(
                settings.base_url,
                settings.api_key,
                client=api,
                stats=follow_up_stats,
                only_ids=sorted(set(stats.conflict_ids)),
            )
            summary.rows_written += _extract_and_load(pipeline, follow_up, follow_up_stats)
    except PipelineStepFailed as exc:
        cause = _root_cause(exc, settings.destination)
        if cause is not exc:
            raise cause from None
        raise SyncError(_step_message(exc)) from exc
    if settings.create_views:
        summary.views = _refresh_views(pipeline)


def _step_message(exc: PipelineStepFailed) -> str:
    inner = exc.__cause__ or exc.__context__
    detail = (str(inner) if inner is not None else str(exc)).strip()
    marker = "The actual reason given is:"
    if marker in detail:  # dlt's connection errors put the useful part last
        return f"cannot open the warehouse: {detail.split(marker, 1)[1].strip().splitlines()[0]}"
    if "Traceback (most recent call last)" in detail:  # a failed job: its traceback is quoted
        return failure_reason(exc)
    first_line = detail.splitlines()[0] if detail else type(inner).__name__
    return f"dlt {exc.step} step failed: {first_line}"
