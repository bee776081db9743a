"""Run the listener: receiver (uvicorn) in the main thread, applier in the background.

SIGINT and SIGTERM stop accepting deliveries (in-flight ones are answered), then the applier
flushes everything spooled, and :func:`run_listener` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from pipelines.listen import warehouse
from pipelines.listen.applier import Applier, ApplierSettings, ApplierTotals, FlushResult
from pipelines.listen.receiver import (
    DEFAULT_MAX_BODY,
    HEALTH_PATH,
    WEBHOOK_PATH,
    Counters,
    VerifySettings,
    create_app,
)
from pipelines.listen.spool import Spool

#: The interpreter's thread switch interval while listening (the default is 5 ms).
GIL_SWITCH_S = 0.0005


@dataclass
class ListenSettings:
    """One listener.

    Attributes:
        applier: Warehouse, API and batching.
        verify: Signature checks.
        host: Interface to bind.
        port: TCP port (0: any free one).
        max_body: Largest accepted body in bytes.
    """

    applier: ApplierSettings
    verify: VerifySettings
    host: str = "127.0.0.1"
    port: int = 8787
    max_body: int = DEFAULT_MAX_BODY


@dataclass
class ListenSummary:
    """What a listener did, printed at exit."""

    counters: Counters
    totals: ApplierTotals

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        totals = self.totals
        return {
            **vars(self.counters),
            "flushes": totals.flushes,
            "applied_events": totals.events,
            "contacts": totals.contacts,
            "written": totals.written,
            "requests": totals.requests,
            "flush_failures": totals.failures,
        }


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0 picks a free one).

    Raises:
        OSError: The port is taken or the address unusable.
    """
    # IPPROTO_TCP explicitly, so asyncio sets TCP_NODELAY on accepted connections (no ~40 ms
    # delayed-ACK stall per answer).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """uvicorn that reports readiness and treats SIGINT/SIGTERM as "stop, then flush".

    uvicorn's own handlers re-raise the signal after shutdown (SIGTERM would kill the process
    before the final flush); these only ask the server to exit.
    """

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._stop) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: Any) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def run_listener(
    settings: ListenSettings,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_flush: Callable[[FlushResult], None] | None = None,
) -> ListenSummary:
    """Receive and apply until SIGINT/SIGTERM, then flush and return the summary.

    Args:
        settings: What to listen on and where to apply.
        on_ready: Called with the receiver's URL once it accepts connections.
        on_flush: Called after each flush that loaded events.

    Raises:
        OSError: The address cannot be bound.
        pipelines.listen.spool.SpoolError: The spool cannot be opened.
    """
    # The flushing thread is CPU-bound Python for most of a flush; at the default 5 ms switch
    # interval every GIL handoff the receiver's event loop needs (socket, spool thread, answer)
    # waits up to 5 ms behind it, which cut the receiver from 500 to ~300 deliveries/s
    # while flushing (measured, 2 cores).
    sys.setswitchinterval(GIL_SWITCH_S)
    sock = bind(settings.host, settings.port)
    spool = Spool(warehouse.spool_path(settings.applier.warehouse))
    applier = Applier(spool, settings.applier, on_flush=on_flush)
    counters = Counters()
    app = create_app(
        spool,
        settings.verify,
        on_stored=applier.notify,
        health=applier.health,
        counters=counters,
        max_body=settings.max_body,
    )
    port = sock.getsockname()[1]
    url = f"http://{settings.host}:{port}{WEBHOOK_PATH}"

    def ready() -> None:
        if on_ready is not None:
            on_ready(url)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # uvloop and httptools when installed (both extras pull them in): the pure-Python
        # h11 parser and asyncio loop cost measurably more CPU per request
        loop="auto",
        http="auto",
        ws="none",
        backlog=2048,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config, ready)
    applier.start()  # replays the spool's backlog first
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        applier.stop()
        spool.close()
    return ListenSummary(counters, applier.totals)


__all__ = ["HEALTH_PATH", "WEBHOOK_PATH", "ListenSettings", "ListenSummary", "run_listener"]
