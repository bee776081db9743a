"""The log of public-API requests that the admin API exposes (``GET /_sandbox/requests``)."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

#: Oldest entries are forgotten beyond this, so long benchmark runs stay bounded in memory.
MAX_ENTRIES = 200_000


class RequestLog:
    """Thread-safe, bounded, numbered log entries."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._seq = itertools.count(1)

    def add(self, entry: dict[str, Any]) -> None:
        """Append an entry, numbering it (``seq``)."""
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A snapshot of every kept entry, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry (numbering continues)."""
        with self._lock:
            self._entries.clear()
