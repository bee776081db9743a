"""The listener's seam to the warehouse: pipeline, the lock (bounded wait), pending loads, views.

Everything the listener needs from the sync's warehouse code goes through here, so the
listener and ``lynkist sync`` always agree on the pipeline (same dlt working directory, same
name) and on the lock file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import dlt

from pipelines.sync import (
    SyncLockedError,
    SyncSettings,
    _create_views,
    _finish_pending,
    make_pipeline,
    pipeline_location,
    warehouse_lock,
)

__all__ = [
    "WarehouseBusyError",
    "create_views",
    "finish_pending",
    "locked",
    "open_pipeline",
    "spool_path",
]

#: How often the lock is tried again while another process holds it.
_LOCK_POLL_S = 0.05


class WarehouseBusyError(Exception):
    """The warehouse stayed locked (a long sync) for longer than the bounded wait."""


def spool_path(settings: SyncSettings) -> Path:
    """The listener's spool file: beside the warehouse's dlt working directory."""
    pipelines_dir, name = pipeline_location(settings)
    return pipelines_dir / f"{name}.listen-spool.sqlite"


def open_pipeline(settings: SyncSettings) -> dlt.Pipeline:
    """A fresh pipeline object on the warehouse (re-reads the state a sync may have changed)."""
    return make_pipeline(settings)


@contextlib.contextmanager
def locked(settings: SyncSettings, wait_s: float) -> Iterator[None]:
    """Hold the warehouse's one lock for the block, waiting up to ``wait_s`` for it.

    Raises:
        WarehouseBusyError: Still held by someone else after ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    stack = contextlib.ExitStack()
    while True:
        try:
            stack.enter_context(warehouse_lock(settings))
            break
        except SyncLockedError as exc:
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(str(exc)) from None
            time.sleep(_LOCK_POLL_S)
    with stack:
        yield


def finish_pending(pipeline: dlt.Pipeline) -> int:
    """Load what a killed run (sync or listener) left extracted or normalized."""
    return _finish_pending(pipeline)


def create_views(pipeline: dlt.Pipeline) -> list[str]:
    """(Re)create the analysis views, the event views included."""
    return _create_views(pipeline)
