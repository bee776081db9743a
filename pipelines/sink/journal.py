"""The in-flight journal of a push (the push holds the warehouse's lock meanwhile:
:func:`pipelines.warehouse.warehouse_lock`, so two pushes never plan against the same mirror).

The journal records when the last ``POST /contacts/bulk`` was sent; a
push killed while a bulk call was in flight leaves it behind, and the next push waits until
that call can no longer be running on the server (its timeout) before it refreshes the mirror
and re-plans — so that a batch committed late is seen as existing rather than created again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


class InflightJournal:
    """Remembers the send time of the latest bulk call until the push ends cleanly.

    Args:
        path: The journal file (beside the warehouse).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def previous_sent_at(self) -> float | None:
        """Wall-clock time of the last bulk call of a push that did not end cleanly."""
        try:
            data = json.loads(self.path.read_text())
            return float(data["sent_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def wait_for_previous(self, grace_s: float) -> float:
        """Sleep until a bulk call left in flight by a killed push has surely ended.

        Args:
            grace_s: How long a request can run (the client's timeout).

        Returns:
            Seconds waited.
        """
        sent_at = self.previous_sent_at()
        if sent_at is None:
            return 0.0
        remaining = sent_at + grace_s - time.time()
        if remaining <= 0:
            return 0.0
        time.sleep(remaining)
        return remaining

    def mark_sent(self) -> None:
        """Record that a bulk call is about to be sent (atomic replace, durable)."""
        with self._lock:
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with tmp.open("w") as handle:
                json.dump({"sent_at": time.time(), "pid": os.getpid()}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def clear(self) -> None:
        """Forget the in-flight record: the push ended and every call got its answer."""
        with self._lock:
            self.path.unlink(missing_ok=True)
