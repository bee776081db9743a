"""The listener's side of the warehouse layer: the pipeline, the one lock, recovery, views.

Everything goes through :mod:`pipelines.warehouse`, so the listener and ``lynkist sync`` always
agree on the pipeline (same dlt working directory and name) and on the lock file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dlt

from pipelines.source.runner import SyncSettings, warehouse_of
from pipelines.warehouse import WarehouseLockedError, warehouse_lock
from pipelines.warehouse import create_views as _create_views
from pipelines.warehouse import finish_pending as _finish_pending

__all__ = [
    "WarehouseBusyError",
    "create_views",
    "finish_pending",
    "locked",
    "open_pipeline",
    "spool_path",
]

#: The listener's name in the lock file (what a refused sync or push is told is running).
LOCK_COMMAND = "listen"

WarehouseBusyError = WarehouseLockedError


def spool_path(settings: SyncSettings) -> Path:
    """The listener's spool file: beside the warehouse's dlt working directory."""
    return warehouse_of(settings).state_path(".listen-spool.sqlite")


def open_pipeline(settings: SyncSettings) -> dlt.Pipeline:
    """A fresh pipeline object on the warehouse (re-reads the state a sync may have changed)."""
    return warehouse_of(settings).pipeline()


@contextlib.contextmanager
def locked(settings: SyncSettings, wait_s: float) -> Iterator[None]:
    """Hold the warehouse's one lock for the block, waiting up to ``wait_s`` for it.

    Raises:
        WarehouseLockedError: Still held by someone else after ``wait_s``.
    """
    with warehouse_lock(warehouse_of(settings), command=LOCK_COMMAND, wait_s=wait_s):
        yield


def finish_pending(pipeline: dlt.Pipeline) -> int:
    """Load what a killed run (sync or listener) left extracted or normalized.

    Returns:
        How many packages were loaded (a package that keeps failing is set aside by the
        warehouse layer after a bounded number of resumes).
    """
    return _finish_pending(pipeline).loaded


def create_views(pipeline: dlt.Pipeline) -> list[str]:
    """(Re)create the analysis views, the event views included."""
    return list(_create_views(pipeline))
