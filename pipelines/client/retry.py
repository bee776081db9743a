"""When and how long to wait before retrying a request (built on ``tenacity``).

Which failures are retried depends on the request, because resending a write the server may
already have applied would duplicate it:

=============================================  ==========================================
request                                         retried on
=============================================  ==========================================
GET, POST /search, PATCH, DELETE                429, 5xx, timeouts, connection errors
POST /contacts with an ``Idempotency-Key``      same (the server replays the first answer),
                                                and 409 (the same key still in progress)
POST /contacts without a key, POST /bulk        429, and connect failures (never sent);
                                                anything after sending → OutcomeUnknownError
any                                             never 400/401/403/404/422
=============================================  ==========================================

The client encodes the per-request rule by what it raises: a failure that might have been
applied is raised as :class:`OutcomeUnknownError`, which is never retried; everything else in
:func:`is_retryable` is retried until the policy's attempt limit or time budget runs out.

Waits: ``Retry-After`` (seconds or HTTP-date) when the server sends one, plus a little jitter so
that concurrent workers do not all come back at the same instant; otherwise exponential backoff
with "equal jitter" (half fixed, half random) capped at ``max_backoff``. A wait that would end
beyond the time budget is not taken: the last error is raised at once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import tenacity

from pipelines.client.errors import (
    ConflictError,
    LynkistError,
    LynkistTransportError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
)

__all__ = ["RetryEvent", "RetryPolicy", "is_retryable", "parse_retry_after", "was_sent"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: httpx failures raised before a single byte of the request was written.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def was_sent(exc: httpx.TransportError) -> bool:
    """Whether the request may have reached the server before ``exc`` happened.

    Args:
        exc: The httpx transport failure.

    Returns:
        False only for failures that happen before the request is written (connect errors,
        connect and pool timeouts); True for everything else (read/write timeouts, dropped
        connections, protocol errors), where the server may have processed it.
    """
    return not isinstance(exc, _UNSENT)


def is_retryable(error: BaseException) -> bool:
    """Whether an error raised by one attempt may be retried.

    Args:
        error: The exception raised by the attempt.

    Returns:
        True for 429, 5xx and transport errors, except :class:`OutcomeUnknownError`; and for
        409, which only a keyed request gets (its key is still in progress on the server:
        nothing was done by this attempt, and a later one replays the first answer).
    """
    if isinstance(error, OutcomeUnknownError):
        return False
    return isinstance(error, RateLimitError | ServerError | ConflictError | LynkistTransportError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header into seconds to wait.

    Args:
        value: The header value: delay-seconds (``"3"``, also ``"1.5"``) or an HTTP-date
            (``"Fri, 27 Nov 2026 02:10:00 GMT"``).
        now: Current Unix time, for HTTP-dates (default ``time.time()``).

    Returns:
        Seconds to wait (0 for a date in the past), or None when absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryEvent:
    """One decision to retry, passed to the ``on_retry`` callback.

    Attributes:
        attempt: The attempt that just failed (1-based).
        wait: Seconds the policy will sleep before the next attempt.
        error: The error of the failed attempt.
    """

    attempt: int
    wait: float
    error: BaseException


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff, caps and budget for retrying one logical request.

    Attributes:
        max_attempts: Attempts per request, the first included.
        budget: Seconds from the first attempt within which every retry must start; a wait
            that would end later is not taken.
        initial_backoff: Base wait after the first failure (without Retry-After).
        multiplier: Growth factor of the backoff per attempt.
        max_backoff: Cap of a computed backoff (Retry-After is honoured beyond it, up to the
            budget, because the server knows best when it will accept requests again).
        first_contact_attempts: Attempts when the server has never answered this client and
            the connection is refused — a wrong base URL should fail in seconds, not minutes.
        sleep: Sleep function (tests pass a fake).
        clock: Monotonic clock in seconds, for the budget (tests pass a fake).
        wall_clock: Unix time, for HTTP-date ``Retry-After`` (tests pass a fake).
        rng: Source of jitter.
    """

    max_attempts: int = 8
    budget: float = 120.0
    initial_backoff: float = 0.5
    multiplier: float = 2.0
    max_backoff: float = 20.0
    first_contact_attempts: int = 3
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.budget < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("budget and backoffs must not be negative")

    @classmethod
    def no_retries(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1, first_contact_attempts=1)

    def parse_retry_after(self, value: str | None) -> float | None:
        """:func:`parse_retry_after` against this policy's wall clock."""
        return parse_retry_after(value, now=self.wall_clock())

    def backoff(self, attempt: int) -> float:
        """Computed wait after failed attempt number ``attempt`` (no Retry-After).

        Args:
            attempt: The 1-based number of the attempt that failed.

        Returns:
            ``d/2 + uniform(0, d/2)`` with ``d = min(max_backoff, initial * multiplier**(n-1))``.
        """
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def wait_for(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait after ``error`` ended attempt number ``attempt``.

        Args:
            error: The failure.
            attempt: The 1-based attempt number.

        Returns:
            Retry-After plus up to 10% (at most 1 s) jitter when the server sent one, else the
            exponential backoff.
        """
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) + self.rng.uniform(0, min(1.0, 0.1 * retry_after))
        return self.backoff(attempt)

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable: Callable[[BaseException], bool] = is_retryable,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, fails for good, or the attempts/budget run out.

        Args:
            fn: One attempt; raises on failure.
            retryable: Decides whether a raised error may be retried.
            on_retry: Called before each sleep (stats, logging).

        Returns:
            What ``fn`` returned.

        Raises:
            Exception: The last attempt's error, unchanged, with ``attempts`` set on
                :class:`LynkistError` instances.
        """
        started = self.clock()

        def stop(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if state.attempt_number >= self.max_attempts:
                return True
            if (
                isinstance(error, LynkistTransportError)
                and error.first_contact
                and not error.sent
                and state.attempt_number >= self.first_contact_attempts
            ):
                return True
            return self.clock() - started + state.upcoming_sleep > self.budget

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            assert error is not None  # only called after a failed attempt
            return self.wait_for(error, state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            assert error is not None
            if on_retry is not None:
                on_retry(RetryEvent(state.attempt_number, state.upcoming_sleep, error))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retryable),
            stop=stop,
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return fn()

        try:
            return retrying(attempt)
        except LynkistError as error:
            error.attempts = attempts
            raise
