"""Scan hooks: writes that happen between two page requests of a scan (admin-registered)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScanHook:
    """Ops to run once, right after a tenant's first page ``after_page`` is served."""

    tenant: str
    after_page: int
    ops: list[dict[str, Any]] = field(default_factory=list)


class ScanHooks:
    """Pending hooks; each fires once."""

    def __init__(self) -> None:
        """Start with none."""
        self._lock = threading.Lock()
        self._hooks: list[ScanHook] = []

    def add(self, hook: ScanHook) -> None:
        """Register a hook."""
        with self._lock:
            self._hooks.append(hook)

    def take(self, tenant: str, page: int) -> list[ScanHook]:
        """Remove and return the hooks due after serving ``page`` to ``tenant``."""
        with self._lock:
            due: list[ScanHook] = []
            kept: list[ScanHook] = []
            for hook in self._hooks:
                (due if hook.tenant == tenant and hook.after_page == page else kept).append(hook)
            self._hooks = kept
        return due

    def clear(self) -> None:
        """Drop every pending hook."""
        with self._lock:
            self._hooks.clear()
