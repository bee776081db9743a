"""Webhook deliveries from the sandbox: signed, retried with backoff, never on the request path.

:meth:`WebhookDispatcher.emit` only serialises the event and puts it on a schedule; background
threads POST it to every subscribed URL. A slow or failing receiver therefore never slows an API
request. Each delivery is signed at send time (see :mod:`pipelines.webhooks` for the format and
the receiver-side :func:`pipelines.webhooks.verify`), so retries carry a fresh timestamp and the
same ``Lynkist-Event-Id``. A delivery counts as done on any 2xx; anything else (non-2xx, timeout,
connection error) is retried after ``backoff_s * 2**(attempt-1)`` seconds (capped at
``backoff_max_s``), up to ``max_attempts`` attempts in all. Deliveries to one URL may arrive out
of order, as with most webhook providers: receivers order by ``occurred_at``.

How the sandbox app wires it::

    dispatcher = WebhookDispatcher(config.webhook_urls, config.webhook_secret)
    dispatcher.start()                               # at app start-up
    dispatcher.emit("contact.created", tenant, contact, occurred_at=contact["created_at"])
    dispatcher.deliveries                            # for GET /_sandbox/webhooks
    dispatcher.stop()                                # at shutdown: quick, see stop()

With no URLs, ``emit`` does nothing and ``start`` starts no thread.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from pipelines import __version__
from pipelines.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

EVENTS: Final = (
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "contact.note_added",
    "contact.communication_added",
)
_LOG_MAX: Final = 10_000


@dataclass
class _Delivery:
    event_id: str
    event: str
    tenant: str
    url: str
    body: bytes
    attempts: int = 0
    status: int | None = None
    error: str | None = None


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    delivery: _Delivery = field(compare=False)


class WebhookDispatcher:
    """Delivers contact events to subscribed URLs from background threads.

    Args:
        urls: Subscribed receiver URLs; every event goes to each.
        secret: Shared signing secret (never logged).
        max_attempts: Attempts per delivery, first one included.
        backoff_s: Wait before the first retry; doubles each retry.
        backoff_max_s: Cap on one wait.
        timeout_s: Per-attempt HTTP timeout.
        workers: Delivery threads (a slow receiver occupies one for up to ``timeout_s``).
    """

    def __init__(
        self,
        urls: list[str],
        secret: str,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        timeout_s: float = 5.0,
        workers: int = 2,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be ≥ 1, got {max_attempts}")
        self.urls = list(urls)
        self._secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self._n_workers = max(1, workers)
        self._cond = threading.Condition()
        self._schedule: list[_Scheduled] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=_LOG_MAX)
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:  # the secret stays out of reprs and logs
        return f"WebhookDispatcher(urls={self.urls!r}, max_attempts={self.max_attempts})"

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Finished deliveries, oldest first: ``{"id", "event", "tenant", "url", "status",
        "attempts", "delivered", "error"}`` (``status`` is the last HTTP status, ``None`` when
        no answer came; ``error`` says why the last attempt failed)."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def clear(self) -> None:
        """Forget the delivery log (scheduled deliveries continue)."""
        with self._cond:
            self._log.clear()

    def start(self) -> WebhookDispatcher:
        """Start the delivery threads (no-op without URLs or when already started)."""
        with self._cond:
            if self._threads or not self.urls:
                return self
            self._stopping = False
            self._client = httpx.Client(
                timeout=self.timeout_s,
                headers={"User-Agent": f"lynkist-sandbox-webhooks/{__version__}"},
            )
            for index in range(self._n_workers):
                thread = threading.Thread(
                    target=self._run, name=f"lynkist-webhooks-{index}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop quickly: deliveries already due get one last attempt, waiting retries are dropped.

        Args:
            timeout: Upper bound on the time spent waiting for the threads.
        """
        with self._cond:
            if not self._threads:
                return
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            # Whatever is left (waiting retries, or work cut off by the timeout) is abandoned.
            for item in self._schedule:
                self._record(item.delivery, delivered=False, error=item.delivery.error or "stopped")
            self._schedule.clear()
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def emit(
        self, event: str, tenant: str, contact: dict[str, Any], *, occurred_at: str | None = None
    ) -> None:
        """Schedule ``event`` for every URL; returns at once.

        Args:
            event: e.g. ``"contact.created"``.
            tenant: The tenant the contact belongs to.
            contact: The contact object (serialised now, so later changes don't leak in).
            occurred_at: ISO-8601 time of the change (default: now, UTC, with ``Z``).
        """
        if not self.urls:
            return
        event_id = str(uuid.uuid4())
        payload = {
            "id": event_id,
            "event": event,
            "tenant": tenant,
            "occurred_at": occurred_at or _utc_now_iso(),
            "data": contact,
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            for url in self.urls:
                delivery = _Delivery(event_id, event, tenant, url, body)
                heapq.heappush(self._schedule, _Scheduled(now, next(self._seq), delivery))
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is scheduled or in flight.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            True when idle, False on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._schedule or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    # --- worker side ---------------------------------------------------------------------

    def _next(self) -> _Delivery | None:
        """Block until a delivery is due; None when stopping and nothing more is due."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._schedule and self._schedule[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._schedule).delivery
                if self._stopping:
                    return None  # retries still waiting for their backoff are abandoned
                wait = self._schedule[0].due - now if self._schedule else None
                self._cond.wait(wait)

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            try:
                self._attempt(delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: _Delivery) -> None:
        client = self._client
        delivery.attempts += 1
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.body, self._secret),
            EVENT_ID_HEADER: delivery.event_id,
        }
        try:
            if client is None:
                raise RuntimeError("dispatcher stopped")
            response = client.post(delivery.url, content=delivery.body, headers=headers)
            delivery.status, delivery.error = response.status_code, None
            if response.is_success:
                with self._cond:
                    self._record(delivery, delivered=True, error=None)
                return
            delivery.error = f"HTTP {response.status_code}"
        except (httpx.HTTPError, RuntimeError) as exc:
            delivery.status, delivery.error = None, f"{type(exc).__name__}: {exc}"
        with self._cond:
            if delivery.attempts >= self.max_attempts or self._stopping:
                self._record(delivery, delivered=False, error=delivery.error)
                return
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (delivery.attempts - 1))
            due = time.monotonic() + delay
            heapq.heappush(self._schedule, _Scheduled(due, next(self._seq), delivery))
            self._cond.notify_all()

    def _record(self, delivery: _Delivery, *, delivered: bool, error: str | None) -> None:
        self._log.append(
            {
                "id": delivery.event_id,
                "event": delivery.event,
                "tenant": delivery.tenant,
                "url": delivery.url,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "delivered": delivered,
                "error": error,
            }
        )


def _utc_now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
