"""Run one sync: the dlt pipeline per warehouse, an exclusive lock, and the summary.

``run_sync`` is what ``lynkist sync`` (and the benchmarks, and the demo) call::

    summary = run_sync(SyncSettings(base_url=url, api_key=key, duckdb_path="lynkist.duckdb"))

Each warehouse gets its own dlt working directory (``.lynkist/pipelines`` beside the DuckDB file,
or in the working directory for other destinations), so two warehouses never share dlt state.
A sync holds an exclusive, non-blocking file lock on that warehouse: a second one fails at once
with :class:`SyncLockedError`. Killed at any point, the next run first loads whatever dlt had
already extracted (merge on ``id`` makes that idempotent), then syncs as usual.

The API key is handed to the HTTP client only: it is not a dlt config value here, so it never
reaches dlt's state, trace or the warehouse, and ``SyncSettings`` leaves it out of its repr.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import DestinationException
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.client import LynkistClient, LynkistError, RetryPolicy
from pipelines.contact import DEFAULT_BASE_URL
from pipelines.source import lynkist_source
from pipelines.source.settings import MAX_RESCANS, PAGE_LIMIT, TABLE_NAME
from pipelines.source.stats import SyncStats

__all__ = [
    "SyncConfigError",
    "SyncError",
    "SyncLockedError",
    "SyncSettings",
    "SyncSummary",
    "lock_path",
    "make_pipeline",
    "pipeline_location",
    "run_sync",
    "warehouse_lock",
]

ProgressCallback = Callable[[SyncStats], None]


class SyncError(Exception):
    """A sync failed for a reason other than the API (destination, views, ...)."""


class SyncConfigError(SyncError):
    """The sync cannot start: bad settings (missing key, unwritable warehouse path, ...)."""


class SyncLockedError(SyncError):
    """Another sync holds this warehouse's lock."""


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
        create_views: Refresh the analysis views (``transforms.views``) after loading.
        retry: The client's retry policy (default: the client's).
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)
    duckdb_path: str | os.PathLike[str] = "lynkist.duckdb"
    destination: str = "duckdb"
    dataset: str = "lynkist"
    full_refresh: bool = False
    pipelines_dir: str | os.PathLike[str] | None = None
    pipeline_name: str | None = None
    max_concurrency: int = 8
    timeout: float = 30.0
    page_limit: int = PAGE_LIMIT
    max_rescans: int = MAX_RESCANS
    create_views: bool = True
    retry: RetryPolicy | None = field(default=None, repr=False)


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

    @property
    def changed(self) -> bool:
        """Whether the sync wrote anything."""
        return self.rows_written > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``lynkist sync --json`` prints)."""
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return data


_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("_", text.lower()).strip("_") or "x"


def pipeline_location(settings: SyncSettings) -> tuple[Path, str]:
    """The dlt working directory and pipeline name of the settings' warehouse."""
    if settings.destination == "duckdb":
        db = Path(settings.duckdb_path).expanduser().resolve()
        default_dir = db.parent / ".lynkist" / "pipelines"
        default_name = f"lynkist_{_slug(db.stem)}_{_slug(settings.dataset)}"
    else:
        default_dir = Path.cwd() / ".lynkist" / "pipelines"
        default_name = f"lynkist_{_slug(settings.destination)}_{_slug(settings.dataset)}"
    pipelines_dir = (
        Path(settings.pipelines_dir).expanduser().resolve()
        if settings.pipelines_dir
        else default_dir
    )
    return pipelines_dir, settings.pipeline_name or default_name


def lock_path(settings: SyncSettings) -> Path:
    """The lock file that serializes syncs of the settings' warehouse."""
    pipelines_dir, name = pipeline_location(settings)
    return pipelines_dir / f"{name}.lock"


def _describe(settings: SyncSettings) -> str:
    if settings.destination == "duckdb":
        return str(Path(settings.duckdb_path).expanduser().resolve())
    return f"{settings.destination} dataset {settings.dataset!r}"


def _check_writable(settings: SyncSettings) -> None:
    if settings.destination != "duckdb":
        return
    db = Path(settings.duckdb_path).expanduser().resolve()
    if db.is_dir():
        raise SyncConfigError(
            f"--duckdb {db} is a directory; give a file path such as {db}/lynkist.duckdb"
        )
    if not db.parent.is_dir():
        raise SyncConfigError(
            f"cannot create the warehouse {db}: directory {db.parent} does not exist"
        )
    if not os.access(db.parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        raise SyncConfigError(f"cannot write the warehouse {db}: permission denied")


#: Catalog name under which the warehouse file is attached (see :func:`duckdb_destination`).
WAREHOUSE_CATALOG = "lynkist_warehouse"


#: DuckDB's cap on its own buffers (it spills to disk beyond): the merge's dedup of a large
#: load would otherwise grow with the tenant, and a scheduled sync should keep a flat footprint.
DUCKDB_MEMORY_LIMIT = "128MB"


def duckdb_destination(db: Path, primary: Path) -> Any:
    """A dlt DuckDB destination writing into ``db``, attached under a fixed catalog name.

    DuckDB names a database file's catalog after the file: ``lynkist.duckdb`` becomes catalog
    ``lynkist``, the same name as the default dataset (schema) ``lynkist``, and DuckDB then
    rejects dlt's ``lynkist.<table>`` references as ambiguous. So dlt opens a small private
    ``primary`` file and the warehouse is attached as :data:`WAREHOUSE_CATALOG`, made the
    session's default catalog on every connection dlt opens. The file itself is an ordinary
    DuckDB database (its WAL beside it), readable by any DuckDB client.
    """
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    primary.parent.mkdir(parents=True, exist_ok=True)
    quoted = str(db).replace("'", "''")
    credentials = DuckDbCredentials(
        str(primary),
        statements=[f"ATTACH IF NOT EXISTS '{quoted}' AS {WAREHOUSE_CATALOG}"],
        local_config={"schema": f"{WAREHOUSE_CATALOG}.main"},
        global_config={"memory_limit": DUCKDB_MEMORY_LIMIT},
    )
    return dlt.destinations.duckdb(credentials=credentials)


def make_pipeline(settings: SyncSettings) -> dlt.Pipeline:
    """The dlt pipeline of the settings' warehouse (created on first use).

    Raises:
        SyncConfigError: When the DuckDB path cannot be written.
    """
    _check_writable(settings)
    pipelines_dir, name = pipeline_location(settings)
    destination: Any
    if settings.destination == "duckdb":
        db = Path(settings.duckdb_path).expanduser().resolve()
        destination = duckdb_destination(db, pipelines_dir / f"{name}.catalog.duckdb")
    else:
        try:
            destination = Destination.from_reference(settings.destination)
        except (DestinationException, ImportError) as exc:
            raise SyncConfigError(
                f"unknown destination {settings.destination!r}: use a dlt destination name "
                "such as duckdb or postgres"
            ) from exc
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(pipelines_dir),
        destination=destination,
        dataset_name=settings.dataset,
    )


@contextlib.contextmanager
def warehouse_lock(settings: SyncSettings) -> Iterator[Path]:
    """Hold the warehouse's exclusive lock for the block; fail at once if it is taken.

    An ``flock`` on a file: the kernel releases it when the holder exits, even on ``kill -9``,
    so a crashed sync never leaves a stale lock behind.

    Raises:
        SyncLockedError: Another process holds the lock.
        SyncConfigError: The lock file cannot be created.
    """
    path = lock_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle: TextIO = open(path, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise SyncConfigError(f"cannot create the sync lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            holder = handle.read().strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise SyncLockedError(
                f"another lynkist sync{who} is running on {_describe(settings)}; "
                "nothing was changed — run again when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _finish_pending(pipeline: dlt.Pipeline) -> int:
    """Normalize and load packages an interrupted run left behind; returns how many.

    dlt commits a normalized package by renaming it into ``load/normalized`` and then deleting
    the extracted one; a kill between those two steps leaves both, and dlt would then normalize
    the extracted copy again and fail to commit it over the existing one. The committed package
    is complete (the rename is atomic), so the stale extracted copy is dropped first.
    """
    packages = 0
    normalized = set(pipeline.list_normalized_load_packages())
    for load_id in pipeline.list_extracted_load_packages():
        if load_id in normalized:
            shutil.rmtree(Path(pipeline.working_dir, "normalize", "extracted", load_id))
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    pending = pipeline.list_normalized_load_packages()
    if pending:
        packages = len(pending)
        pipeline.load()
    return packages


def _missing_config(exc: ConfigFieldMissingException, destination: str) -> SyncConfigError:
    fields = ", ".join(exc.fields)
    if "credentials" in exc.fields:
        env = f"DESTINATION__{destination.upper()}__CREDENTIALS"
        return SyncConfigError(
            f"destination {destination!r} needs credentials: set {env} (e.g. "
            "postgresql://user:password@host:5432/database) or add `credentials` under "
            f"[destination.{destination}] in .dlt/secrets.toml"
        )
    return SyncConfigError(f"destination {destination!r} is missing configuration: {fields}")


def _root_cause(exc: BaseException, destination: str) -> BaseException:
    """The API or configuration error inside dlt's wrappers, if any; otherwise ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LynkistError | SyncError):
            return current
        if isinstance(current, ConfigFieldMissingException):
            return _missing_config(current, destination)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _create_views(pipeline: dlt.Pipeline) -> list[str]:
    try:
        from transforms.views import create_views
    except ImportError:
        return []
    try:
        return list(create_views(pipeline))
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
    pipeline.extract(source, refresh=refresh)
    if stats.rows_emitted == 0 and refresh is None:
        pipeline.abort_packages()
        return 0
    info = pipeline.normalize()
    pipeline.load()
    return int(info.row_counts.get(TABLE_NAME, 0))


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
        SyncConfigError: Missing API key or unwritable warehouse.
        SyncLockedError: Another sync is running on this warehouse.
        LynkistError: The API failed (authentication, permissions, exhausted retries, ...).
        SyncError: The destination or the views failed.
    """
    if not settings.api_key:
        raise SyncConfigError("no API key: set LYNKIST_API_KEY or pass --api-key")
    started = time.monotonic()
    pipeline = make_pipeline(settings)
    stats = SyncStats(on_progress=progress)
    summary = SyncSummary(
        destination=settings.destination, dataset=settings.dataset, warehouse=_describe(settings)
    )
    with warehouse_lock(settings):
        try:
            summary.resumed_packages = _finish_pending(pipeline)
            with contextlib.ExitStack() as owned:
                api = client or owned.enter_context(
                    LynkistClient(
                        settings.base_url,
                        settings.api_key,
                        timeout=settings.timeout,
                        max_concurrency=settings.max_concurrency,
                        retry=settings.retry,
                    )
                )
                source = lynkist_source(
                    settings.base_url,
                    settings.api_key,
                    client=api,
                    stats=stats,
                    full_refresh=settings.full_refresh,
                    page_limit=settings.page_limit,
                    max_rescans=settings.max_rescans,
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
                client_stats = api.stats.snapshot()
        except PipelineStepFailed as exc:
            cause = _root_cause(exc, settings.destination)
            if cause is not exc:
                raise cause from None
            raise SyncError(_step_message(exc)) from exc
        if settings.create_views:
            summary.views = _create_views(pipeline)
    summary.new = stats.new
    summary.updated = stats.updated
    summary.restored = stats.restored
    summary.deleted = stats.deleted
    summary.unchanged = stats.unchanged
    summary.pages = stats.pages
    summary.scan_passes = stats.scan_passes
    summary.requests = client_stats.requests
    summary.retries = client_stats.retries
    summary.throttled = client_stats.throttled
    summary.duration_s = time.monotonic() - started
    return summary


def _step_message(exc: PipelineStepFailed) -> str:
    inner = exc.__cause__ or exc.__context__
    detail = (str(inner) if inner is not None else str(exc)).strip()
    marker = "The actual reason given is:"
    if marker in detail:  # dlt's connection errors put the useful part last
        return f"cannot open the warehouse: {detail.split(marker, 1)[1].strip().splitlines()[0]}"
    first_line = detail.splitlines()[0] if detail else type(inner).__name__
    return f"dlt {exc.step} step failed: {first_line}"
