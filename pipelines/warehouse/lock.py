"""One exclusive lock per warehouse, shared by every runner (sync, push, listener).

An ``flock`` on a file in the warehouse's dlt working directory: the kernel releases it when
the holder exits, even on ``kill -9``, so a crashed run never leaves a stale lock behind. The
holder writes ``<pid> <command>`` into the file so that a refused run can say who is busy.

A run that finds ``lynkist listen`` holding the lock waits for it (up to :data:`LISTEN_WAIT_S`),
whatever its own ``wait_s``: the listener holds the warehouse only while it flushes.

The lock is reentrant within one thread: a push that refreshes its mirror by running a sync
holds it once. Another thread of the same process, like another process, waits or is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pipelines.warehouse.errors import WarehouseConfigError, WarehouseLockedError
from pipelines.warehouse.location import Warehouse

__all__ = ["LOCK_POLL_S", "lock_path", "warehouse_lock"]

#: How often a waiting run retries the lock.
LOCK_POLL_S = 0.1
#: How long any run waits while ``lynkist listen`` holds the lock: a listener holds it only for
#: one flush (seconds), so a scheduled sync or push started meanwhile waits instead of failing.
LISTEN_WAIT_S = 120.0

_held_guard = threading.Lock()
#: lock path -> (owning thread id, depth): the locks this process holds.
_held: dict[Path, tuple[int, int]] = {}


def lock_path(warehouse: Warehouse) -> Path:
    """The lock file of ``warehouse``."""
    return warehouse.state_path(".lock")


def _reenter(path: Path) -> bool:
    with _held_guard:
        owner = _held.get(path)
        if owner is None or owner[0] != threading.get_ident():
            return False
        _held[path] = (owner[0], owner[1] + 1)
        return True


def _leave(path: Path) -> bool:
    """Drop one level; True when this was the outermost holder."""
    with _held_guard:
        owner, depth = _held[path]
        if depth > 1:
            _held[path] = (owner, depth - 1)
            return False
        del _held[path]
        return True


def _try_flock(handle: TextIO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        return False
    return True


@contextlib.contextmanager
def warehouse_lock(
    warehouse: Warehouse, *, command: str = "sync", wait_s: float = 0.0
) -> Iterator[Path]:
    """Hold the warehouse's exclusive lock for the block.

    Args:
        warehouse: The warehouse to lock.
        command: What the holder is doing (``sync``, ``push``, ``listen``), shown to others.
        wait_s: How long to wait for the current holder to finish; 0 fails at once.

    Yields:
        The lock file's path.

    Raises:
        WarehouseLockedError: Another run still held the lock after ``wait_s``.
        WarehouseConfigError: The lock file cannot be created.
    """
    path = lock_path(warehouse)
    if _reenter(path):
        try:
            yield path
        finally:
            _leave(path)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle: TextIO = open(path, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise WarehouseConfigError(f"cannot create the lock file {path}: {exc.strerror}") from None
    try:
        started = time.monotonic()
        deadline = started + wait_s
        while not _try_flock(handle):
            handle.seek(0)
            pid, _, holder = handle.read().strip().partition(" ")
            if holder == "listen":
                deadline = max(deadline, started + LISTEN_WAIT_S)
            if time.monotonic() >= deadline:
                what = holder or "run"
                who = f" (pid {pid})" if pid.isdigit() else ""
                raise WarehouseLockedError(
                    f"another lynkist {what}{who} is running on {warehouse.describe()}; "
                    "nothing was changed — run again when it has finished"
                )
            time.sleep(LOCK_POLL_S)
        with _held_guard:
            _held[path] = (threading.get_ident(), 1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {command}")
        handle.flush()
        try:
            yield path
        finally:
            _leave(path)
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
