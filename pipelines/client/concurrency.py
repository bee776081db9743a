"""Adaptive bound on requests in flight (AIMD), and a streaming bounded ``map``.

:class:`AdaptiveLimiter` works like TCP congestion control: a 429 halves the number of
requests allowed in flight (multiplicative decrease), a run of ``grow_after`` successful answers
raises it by one (additive increase), never above ``max_concurrency`` nor below
``min_concurrency``. Requests that were already in flight when the limit was halved answer 429
too; counting those again would collapse the limit to 1 after a single burst, so a 429 only
shrinks the limit when its request started after the last decrease (an "epoch" check).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["AdaptiveLimiter", "map_bounded"]

T = TypeVar("T")
R = TypeVar("R")


class AdaptiveLimiter:
    """Thread-safe AIMD limit on concurrent requests.

    Args:
        max_concurrency: Upper bound (and the starting limit).
        min_concurrency: Lower bound after decreases.
        grow_after: Consecutive successes that raise the limit by one.
    """

    def __init__(
        self, max_concurrency: int, *, min_concurrency: int = 1, grow_after: int = 8
    ) -> None:
        if max_concurrency < 1 or not 1 <= min_concurrency <= max_concurrency:
            raise ValueError("need 1 <= min_concurrency <= max_concurrency")
        if grow_after < 1:
            raise ValueError("grow_after must be at least 1")
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.grow_after = grow_after
        self._limit = max_concurrency
        self._in_flight = 0
        self._epoch = 0
        self._successes = 0
        self._cond = threading.Condition()
        self._local = threading.local()

    @property
    def limit(self) -> int:
        """Requests currently allowed in flight."""
        with self._cond:
            return self._limit

    @property
    def in_flight(self) -> int:
        """Slots currently held."""
        with self._cond:
            return self._in_flight

    def acquire(self) -> int:
        """Block until a slot is free, take it, and return the current epoch."""
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1
            return self._epoch

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Hold a slot for the block; the epoch is visible to :meth:`current_epoch`."""
        epoch = self.acquire()
        previous = getattr(self._local, "epoch", None)
        self._local.epoch = epoch
        try:
            yield epoch
        finally:
            self._local.epoch = previous
            self.release()

    def current_epoch(self) -> int | None:
        """The epoch of the slot this thread holds, or None outside :meth:`slot`."""
        epoch: int | None = getattr(self._local, "epoch", None)
        return epoch

    def on_throttle(self, epoch: int | None = None) -> None:
        """Record a 429: halve the limit unless the request predates the last decrease.

        Args:
            epoch: The epoch its slot was acquired in (None: treat as current).
        """
        with self._cond:
            self._successes = 0
            if epoch is not None and epoch != self._epoch:
                return
            self._limit = max(self.min_concurrency, self._limit // 2)
            self._epoch += 1

    def on_success(self) -> None:
        """Record an answer that was not a 429; grow after ``grow_after`` in a row."""
        with self._cond:
            self._successes += 1
            if self._successes >= self.grow_after and self._limit < self.max_concurrency:
                self._limit += 1
                self._successes = 0
                self._cond.notify()

    def holds_slot(self) -> bool:
        """Whether the calling thread is inside :meth:`slot` (or :meth:`run`)."""
        return self.current_epoch() is not None

    def run(self, fn: Callable[..., R], *args: object) -> R:
        """Call ``fn(*args)`` while holding a slot (re-entrant: a holder does not wait again)."""
        if self.holds_slot():
            return fn(*args)
        with self.slot():
            return fn(*args)


def map_bounded(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    limiter: AdaptiveLimiter,
    thread_name_prefix: str = "lynkist",
) -> Iterator[tuple[T, R | Exception]]:
    """Apply ``fn`` to each item concurrently, yielding ``(item, result or error)`` as they finish.

    Streams: items are pulled lazily and at most ``limiter.max_concurrency`` are pending, so a
    huge iterable never materializes. Each call holds a limiter slot, so the effective
    concurrency follows the limiter. Closing the iterator early cancels what has not started.
    Called from a thread that already holds a slot (nested inside another ``map_bounded``),
    it runs sequentially in that thread: waiting for more slots there could deadlock once the
    limit is down to one.

    Args:
        fn: Work for one item; an ``Exception`` it raises is yielded, not raised.
        items: The inputs.
        limiter: Bounds and adapts concurrency.
        thread_name_prefix: Names the worker threads.

    Yields:
        ``(item, result)`` or ``(item, exception)`` in completion order.
    """
    if limiter.holds_slot():
        yield from _map_sequential(fn, items)
        return
    window = limiter.max_concurrency
    iterator = iter(items)
    pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix=thread_name_prefix)
    pending: dict[Future[R], T] = {}
    exhausted = False

    def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < window:
            try:
                item = next(iterator)
            except StopIteration:
                exhausted = True
                return
            pending[pool.submit(limiter.run, fn, item)] = item

    interrupted = False
    try:
        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            ready = [(pending.pop(future), future) for future in done]
            # Refill before yielding so that workers stay busy while the consumer works.
            refill()
            for item, future in ready:
                error = future.exception()
                if error is None:
                    yield item, future.result()
                elif isinstance(error, Exception):
                    yield item, error
                else:
                    raise error
    except BaseException as exc:
        # Ctrl-C, SIGTERM (raised as a BaseException by the CLI), SystemExit: not an error.
        interrupted = not isinstance(exc, Exception)
        raise
    finally:
        # On an interruption do not wait for requests in flight (whoever sent them keeps a
        # record: the push's journal); on close or errors, do (no stray calls).
        pool.shutdown(wait=not interrupted, cancel_futures=True)


def _map_sequential(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | Exception]]:
    for item in items:
        try:
            result: R | Exception = fn(item)
        except Exception as error:
            result = error
        yield item, result
