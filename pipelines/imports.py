"""Heavy imports made lazily, one thread at a time.

A sync imports dlt only when it has something to write, and a push imports it on a thread
while its writes wait on the network. Threads importing a package with circular imports at
the same moment (``sync --all``, a threaded orchestrator, that push thread) can fail with
"partially initialized module", so every such import goes through :func:`import_serialised`.
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["import_serialised"]

_IMPORTING = threading.Lock()


def import_serialised(*modules: str) -> None:
    """Import ``modules`` (dotted names), holding the one import lock."""
    with _IMPORTING:
        for name in modules:
            importlib.import_module(name)
