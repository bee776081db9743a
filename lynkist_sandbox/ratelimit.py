"""Per-API-key token-bucket rate limiting for the sandbox, with configurable ``Retry-After``.

The reference says only "429 — Rate limit hit"; the sandbox makes the numbers configurable
(``--rate-limit`` requests/s and ``--burst``) and lets the ``Retry-After`` header take each form a
real server might send, so the client is tested against all of them:

* ``"seconds"``   — delta-seconds, rounded up, at least ``1`` (RFC 9110 §10.2.3).
* ``"http-date"`` — an IMF-fixdate such as ``Sun, 06 Nov 1994 08:49:37 GMT`` (RFC 7231 §7.1.1.1).
* ``"mixed"``     — either of the above, chosen per answer by a seeded ``random.Random``.
* ``"none"``      — no header at all (the client must fall back to its own backoff).

How the sandbox app wires it (pure ASGI, no per-request cost when the limit is off)::

    limiter = TokenBucketLimiter(rate=50, burst=50)          # or None while rate_limit is off
    app = RateLimitMiddleware(
        app,
        get_limiter=lambda: state.limiter,                   # re-read per request: live updates
        get_retry_after_style=lambda: state.config.retry_after,
        on_limited=lambda event: log.append(event),          # event["fault"] == "rate_limited"
    )

Only paths under ``/api/v1/public/`` are limited, one bucket per ``Authorization`` header value
(the API key; requests without one pass through and get their 401 from the app). A limited answer
is ``429 {"detail": "Rate limit exceeded: ..."}`` with ``Retry-After`` per the style; the middleware
also stores ``"rate_limited"`` under ``scope["state"]["sandbox_fault"]`` so an outer request-log
middleware sharing the scope can record it. To change rate/burst live, either build a new limiter
(buckets start full) or call :meth:`TokenBucketLimiter.configure`.

Without the middleware, call :meth:`TokenBucketLimiter.try_acquire` per request and, when it
returns a wait, answer 429 with ``format_retry_after(wait, style, rng=rng)``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

from pipelines.contact import API_BASE_PATH

RETRY_AFTER_STYLES: Final = ("seconds", "http-date", "mixed", "none")
#: Everything under the public API is limited; the admin API (/_sandbox) and docs are not.
API_PATH_PREFIX: Final = API_BASE_PATH.rsplit("/", 1)[0] + "/"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenBucketLimiter:
    """A token bucket per key: ``rate`` tokens/s refill, at most ``burst`` tokens banked.

    Thread-safe (one lock; buckets are tiny and the critical section is a few float operations).
    A new key starts with a full bucket.

    Args:
        rate: Sustained requests per second allowed per key (> 0).
        burst: Bucket capacity: how many requests may arrive at once (≥ 1).
        clock: Monotonic clock in seconds; injectable so tests need not sleep.

    Raises:
        ValueError: When ``rate`` ≤ 0 or ``burst`` < 1.
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self.rate, self.burst = _check_rate_burst(rate, burst)

    def configure(self, rate: float, burst: int) -> None:
        """Change the limits live; every bucket starts full again.

        Args:
            rate: New requests per second per key (> 0).
            burst: New bucket capacity (≥ 1).

        Raises:
            ValueError: When ``rate`` ≤ 0 or ``burst`` < 1.
        """
        rate, burst = _check_rate_burst(rate, burst)
        with self._lock:
            self.rate, self.burst = rate, burst
            self._buckets.clear()

    def try_acquire(self, key: str) -> float | None:
        """Take one token from ``key``'s bucket.

        Args:
            key: The bucket's key (the API key, or anything identifying the caller).

        Returns:
            ``None`` when the request is allowed; otherwise the seconds until a token is
            available (> 0), suitable for ``Retry-After``.
        """
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _check_rate_burst(rate: float, burst: int) -> tuple[float, int]:
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate limit must be a positive number of requests/s, got {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"burst must be an integer ≥ 1, got {burst!r}")
    return float(rate), burst


def default_burst(rate: float) -> int:
    """The bucket size used when only a rate is configured: ``max(1, round(rate))``."""
    return max(1, round(rate))


def format_retry_after(
    seconds: float, style: str, *, rng: random.Random, now: datetime | None = None
) -> str | None:
    """Render a ``Retry-After`` value for a wait of ``seconds``.

    Rounding is always up so a client that obeys the header never retries too early.

    Args:
        seconds: How long the client should wait.
        style: One of :data:`RETRY_AFTER_STYLES`.
        rng: Chooses the form for ``"mixed"`` (seeded by the caller for reproducibility).
        now: The server's current time for ``"http-date"`` (default: the real UTC now).

    Returns:
        The header value, or ``None`` for style ``"none"`` (send no header).

    Raises:
        ValueError: For an unknown style.
    """
    if style == "mixed":
        style = "seconds" if rng.random() < 0.5 else "http-date"
    if style == "seconds":
        return str(max(1, math.ceil(seconds)))
    if style == "http-date":
        current = now if now is not None else datetime.now(UTC)
        # HTTP-dates have whole-second resolution: round the target instant up.
        target = current.astimezone(UTC) + timedelta(seconds=max(0.0, seconds))
        whole = math.ceil(target.timestamp())
        return format_datetime(datetime.fromtimestamp(whole, UTC), usegmt=True)
    if style == "none":
        return None
    raise ValueError(
        f"unknown Retry-After style {style!r}; expected one of {', '.join(RETRY_AFTER_STYLES)}"
    )


class RateLimitMiddleware:
    """Pure ASGI middleware answering 429 when the caller's bucket is empty.

    Args:
        app: The wrapped ASGI application.
        get_limiter: Returns the current limiter, or ``None`` while rate limiting is off.
            Called per request, so settings can change live.
        get_retry_after_style: Returns the current ``Retry-After`` style.
        rng: Drives ``"mixed"``; default ``random.Random(0)`` for reproducible runs.
        on_limited: Called with ``{"fault": "rate_limited", "method", "path", "status": 429,
            "retry_after"}`` for every limited request (e.g. to feed the request log).
        path_prefix: Only paths starting with this are limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        get_limiter: Callable[[], TokenBucketLimiter | None],
        get_retry_after_style: Callable[[], str] = lambda: "seconds",
        rng: random.Random | None = None,
        on_limited: Callable[[dict[str, Any]], None] | None = None,
        path_prefix: str = API_PATH_PREFIX,
    ) -> None:
        self.app = app
        self._get_limiter = get_limiter
        self._get_style = get_retry_after_style
        self._rng = rng if rng is not None else random.Random(0)
        self._on_limited = on_limited
        self._prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        limiter = self._get_limiter()
        key = _authorization(scope)
        if limiter is None or key is None or (wait := limiter.try_acquire(key)) is None:
            await self.app(scope, receive, send)
            return
        retry_after = format_retry_after(wait, self._get_style(), rng=self._rng)
        scope.setdefault("state", {})["sandbox_fault"] = "rate_limited"
        if self._on_limited is not None:
            self._on_limited(
                {
                    "fault": "rate_limited",
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": 429,
                    "retry_after": retry_after,
                }
            )
        await send_json(
            send,
            429,
            {"detail": f"Rate limit exceeded: {limiter.rate:g} requests/s per API key"},
            extra_headers=[] if retry_after is None else [(b"retry-after", retry_after.encode())],
        )


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return str(value.decode("latin-1"))
    return None


async def send_json(
    send: Send,
    status: int,
    payload: object,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete JSON response through a raw ASGI ``send``.

    Args:
        send: The ASGI send callable.
        status: HTTP status code.
        payload: JSON-serialisable body.
        extra_headers: Additional raw header pairs.
    """
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
