"""The ``contacts`` dlt resource and the ``lynkist`` dlt source (see :mod:`pipelines.source`).

Imported on use: ``pipelines.source`` itself does not import dlt, so a sync that finds nothing
to write never pays for it (see :mod:`pipelines.source.quick`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa
from dlt.common.pipeline import SupportsPipeline
from dlt.extract import DltResource

from pipelines.client import LynkistClient
from pipelines.defaults import DEFAULT_MAX_CONCURRENCY
from pipelines.source.arrow import with_load_id
from pipelines.source.mirror import Mirror, load_fingerprints, utc_now
from pipelines.source.reconcile import Reconciler
from pipelines.source.rejected import RejectedLog, load_open_problems
from pipelines.source.safety import DEFAULT_MAX_DELETE_SHARE
from pipelines.source.settings import (
    BATCH_ROWS,
    COLUMN_HINTS,
    LOAD_ID_COLUMN,
    LOAD_ID_HINT,
    MAX_RESCANS,
    PAGE_LIMIT,
    PRIMARY_KEY,
    REJECTED_HINTS,
    REJECTED_KEY,
    REJECTED_TABLE,
    SOURCE_NAME,
    TABLE_NAME,
)
from pipelines.source.stats import SyncStats

if TYPE_CHECKING:
    from pipelines.source.quick import StartedScan

__all__ = ["contacts_resource", "lynkist_source"]


class _DltLogFilter(logging.Filter):
    """Keeps dlt's log to one line per record, and drops one warning that is pure noise.

    - dlt logs a failing load job with its traceback, at every retry (~21 for one stuck job):
      the first line of the message is kept, the traceback goes (the run's own error says what
      failed, in one line).
    - dlt warns that our JSON hints differ from the Arrow ``string`` type on every table it
      extracts; JSON columns travel as encoded text on purpose (same column type on every
      destination).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "when merging arrow schema with dlt schema" in message:
            return False
        if record.exc_info or "Traceback (most recent call last)" in message:
            first = message.split("Traceback (most recent call last)", 1)[0].strip()
            record.msg = (first.splitlines() or ["(traceback omitted)"])[0]
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_log_filter = _DltLogFilter()
if not any(isinstance(f, _DltLogFilter) for f in logging.getLogger("dlt").filters):
    logging.getLogger("dlt").addFilter(_log_filter)


def _active_pipeline() -> SupportsPipeline:
    """The pipeline running this extract: its destination holds the mirror to compare with."""
    return dlt.current.pipeline()


_MERGE: Any = {"disposition": "merge", "strategy": "delete-insert"}


def _current_load_id() -> str | None:
    """The id of the load package being extracted (the value of ``_dlt_load_id``); None when
    the resource is iterated outside dlt's extract (the listener's SQL path adds the column)."""
    from dlt.common.configuration.exceptions import ContextDefaultCannotBeCreated
    from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable

    try:
        return str(dlt.current.load_package_state()["load_id"])
    except (CurrentLoadPackageStateNotAvailable, ContextDefaultCannotBeCreated):
        return None


def _lineage(table: pa.Table, load_id: str | None) -> pa.Table:
    return table if load_id is None else with_load_id(table, load_id)


def _rejected_item(table: pa.Table) -> Any:
    """``table`` dispatched to ``contacts_rejected``, with that table's own key and hints."""
    hints = dlt.mark.make_hints(
        table_name=REJECTED_TABLE,
        write_disposition=_MERGE,
        primary_key=list(REJECTED_KEY),
        columns={**REJECTED_HINTS, LOAD_ID_COLUMN: LOAD_ID_HINT},
    )
    return dlt.mark.with_hints(
        _lineage(table, _current_load_id()), hints, create_table_variant=True
    )


def _report(rejected: RejectedLog, counters: SyncStats) -> Iterator[Any]:
    """After the scan: the problems into the counters, and their rows for ``contacts_rejected``."""
    rejected.count_into(counters)
    if (report := rejected.table(utc_now())) is not None:
        yield _rejected_item(report)


def _with_lineage(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Each table with this load's ``_dlt_load_id`` (see :func:`with_load_id`)."""
    load_id = _current_load_id()
    for table in tables:
        yield _lineage(table, load_id)


def contacts_resource(
    client: LynkistClient,
    *,
    stats: SyncStats | None = None,
    full_refresh: bool = False,
    only_ids: Sequence[str] | None = None,
    page_limit: int = PAGE_LIMIT,
    max_rescans: int = MAX_RESCANS,
    batch_rows: int = BATCH_ROWS,
    close_client: bool = False,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    started: StartedScan | None = None,
) -> DltResource:
    """The ``contacts`` resource over an existing client.

    Args:
        client: API client (its stats count the requests).
        stats: Counters to fill (a new object when None).
        full_refresh: Ignore the warehouse's copy: emit every contact (pair it with dlt's
            ``refresh="drop_resources"`` so the old table goes).
        only_ids: Re-fetch just these contacts instead of scanning (conflict follow-up).
        page_limit: Contacts per page (1-100).
        max_rescans: Extra full scans allowed when the listing shifted during a scan.
        batch_rows: Rows per Arrow table handed to dlt.
        close_client: Close ``client`` when the resource is exhausted.
        max_delete_share: Largest share of the live mirror one run may mark deleted; more
            stops the run (:class:`~pipelines.source.safety.DeleteShareError`).
        started: A scan begun before dlt was imported (:func:`pipelines.source.quick.start`):
            the resource continues it where it stands instead of starting its own.

    Raises:
        ForeignMirrorError: (while extracting) The warehouse mirrors another tenant.
        DeleteShareError: (while extracting) Too many contacts would be marked deleted.
    """
    counters = stats if stats is not None else SyncStats()

    def contacts() -> Iterator[pa.Table]:
        try:
            if started is not None:
                yield from _with_lineage(started.rest())
                yield from _report(started.rejected, started.stats)
                return
            pipeline = _active_pipeline()
            counters.set_phase("mirror")
            mirror = Mirror() if full_refresh else load_fingerprints(pipeline)
            rejected = RejectedLog(None if full_refresh else load_open_problems(pipeline))
            reconciler = Reconciler(
                client,
                mirror,
                counters,
                pipeline=pipeline,
                page_limit=page_limit,
                max_rescans=max_rescans,
                batch_rows=batch_rows,
                rejected=rejected,
                max_delete_share=max_delete_share,
                verify_tenant=only_ids is None,
            )
            yield from _with_lineage(
                reconciler.refresh(only_ids) if only_ids is not None else reconciler.run()
            )
            yield from _report(rejected, counters)
        finally:
            if close_client:
                client.close()

    return dlt.resource(
        contacts,
        name=TABLE_NAME,
        # delete-insert by primary key. Not declared "deduplicated", although each load carries
        # at most one row per id: dlt truncates the staging table only when a package's load
        # starts, so a run killed after copying a job into staging and resumed (once or twice)
        # copies it again, and without dlt's dedup every contact was stored twice.
        write_disposition=_MERGE,
        primary_key=PRIMARY_KEY,
        columns={**COLUMN_HINTS, LOAD_ID_COLUMN: LOAD_ID_HINT},
    )


# section "source": the config section dlt derived when this lived in pipelines/source/__init__.py
@dlt.source(name=SOURCE_NAME, section="source", max_table_nesting=0)
def lynkist_source(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    *,
    client: LynkistClient | None = None,
    stats: SyncStats | None = None,
    full_refresh: bool = False,
    only_ids: Sequence[str] | None = None,
    page_limit: int = PAGE_LIMIT,
    max_rescans: int = MAX_RESCANS,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    started: StartedScan | None = None,
) -> DltResource:
    """Lynkist contacts, incrementally: new, changed and archived contacts since the last run.

    Args:
        base_url: API root, e.g. ``https://api.lynkist.io`` (config ``sources.lynkist.base_url``).
        api_key: The tenant's key (secret ``sources.lynkist.api_key``); used only to build the
            client when ``client`` is None, never stored.
        client: A ready client (its statistics then cover the whole sync); the caller closes it.
        stats: Counters to fill while the resource runs.
        full_refresh: Emit every contact, ignoring the warehouse (use with
            ``refresh="drop_resources"``).
        only_ids: Re-fetch just these contacts instead of scanning.
        page_limit: Contacts per page (1-100).
        max_rescans: Extra full scans allowed when the listing shifted during a scan.
        max_concurrency: Requests in flight when this source builds its own client.
        max_delete_share: Largest share of the live mirror one run may mark deleted.
        started: A scan begun before dlt was imported, to continue (see
            :func:`contacts_resource`).
    """
    own = client is None
    api = client or LynkistClient(base_url, api_key, max_concurrency=max_concurrency)
    return contacts_resource(
        api,
        stats=stats,
        full_refresh=full_refresh,
        only_ids=only_ids,
        page_limit=page_limit,
        max_rescans=max_rescans,
        close_client=own,
        max_delete_share=max_delete_share,
        started=started,
    )
