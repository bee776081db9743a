"""Page-number pagination over ``GET /contacts``: page 1, then the rest concurrently.

Page 1 says how many pages there are; pages 2..N are then fetched in parallel (bounded and
adapted by the client's :class:`~pipelines.client.concurrency.AdaptiveLimiter`) and yielded in
the order they complete, so memory holds at most two windows of pages however large the
tenant. Requests are refilled as they complete, so the network stays busy while the consumer
works on a page.
If a later page reports more pages than known (contacts added during the scan), the extra
pages are fetched too; every page number is requested exactly once.

:meth:`ContactPaginator.start` begins the listing in the background before anyone iterates, for
a caller with slow work ahead (the ``lynkist`` command importing dlt): pages arrive meanwhile,
up to ``start_buffer`` held, and the network is not idle while the process starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from pipelines.client.concurrency import AdaptiveLimiter
from pipelines.client.models import ContactPage

__all__ = ["ContactPaginator"]


class ContactPaginator(Iterator[ContactPage]):
    """Iterator over every page of a listing.

    Args:
        fetch: Fetches one page by number (raises on failure after its own retries).
        limiter: Bounds and adapts how many pages are in flight.

    Attributes:
        total_pages: Pages known so far (None before page 1 arrives).
        total_items: Items page 1 (or the latest page) reported.
        pages_fetched: Pages yielded so far.
    """

    def __init__(self, fetch: Callable[[int], ContactPage], *, limiter: AdaptiveLimiter) -> None:
        self._fetch = fetch
        self._limiter = limiter
        self.total_pages: int | None = None
        self.total_items: int | None = None
        self.pages_fetched = 0
        self._pages: Iterator[ContactPage] | None = None
        self._prefetch: _Prefetch | None = None
        self._buffer: int | None = None  # pages held before the consumer arrives (start())
        self._starter: threading.Thread | None = None
        self._head: ContactPage | BaseException | None = None

    def __iter__(self) -> ContactPaginator:
        return self

    def __next__(self) -> ContactPage:
        if self._starter is not None:
            self._starter.join()
            self._starter = None
            head, self._head = self._head, None
            if self._prefetch is not None:
                self._prefetch.buffer = 2 * self._prefetch.window  # the consumer is here now
            if isinstance(head, BaseException):
                raise head
            if head is not None:
                return head
        if self._pages is None:
            self._pages = self._run()
        return next(self._pages)

    def start(self, *, start_buffer: int = 256) -> ContactPaginator:
        """Begin fetching now, in a background thread: page 1, then the others.

        Until the first ``next()``, up to ``start_buffer`` pages are held (instead of two
        windows) so the whole start-up of a slow consumer is spent on the network; from then
        on the usual bound applies. Errors are raised by the first ``next()``.

        Returns:
            The paginator itself.
        """
        if self._pages is None and self._starter is None:
            self._buffer = start_buffer
            self._pages = self._run()
            self._starter = threading.Thread(
                target=self._take_head, name="lynkist-pages-start", daemon=True
            )
            self._starter.start()
        return self

    def hold(self, pages: int | None) -> None:
        """Let up to ``pages`` pages wait for the consumer, who has slow work ahead (None: back
        to the usual two windows). The network keeps working meanwhile; memory stays bounded.
        """
        if self._prefetch is not None:
            window = self._prefetch.window
            self._prefetch.buffer = max(pages or 0, 2 * window)
            self._prefetch.refill()

    def _take_head(self) -> None:
        assert self._pages is not None
        try:
            self._head = next(self._pages)
        except BaseException as exc:  # handed to the consumer's first next()
            self._head = exc

    def close(self) -> None:
        """Stop early: cancel pages not yet started and wait for those in flight."""
        if self._starter is not None:
            self._starter.join()
            self._starter = None
            self._head = None
        if self._pages is not None:
            self._pages.close()  # type: ignore[attr-defined]

    def _note(self, page: ContactPage) -> None:
        self.total_pages = max(self.total_pages or 0, page.total_pages)
        self.total_items = page.total_items

    def _run(self) -> Iterator[ContactPage]:
        first = self._limiter.run(self._fetch, 1)
        self._note(first)
        if self._limiter.holds_slot():
            # Nested inside map_concurrent: more slots could deadlock at a limit of one.
            self.pages_fetched += 1
            yield first
            while self.pages_fetched < (self.total_pages or 0):
                page = self._fetch(self.pages_fetched + 1)
                self._note(page)
                self.pages_fetched += 1
                yield page
            return
        window = self._limiter.max_concurrency
        pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="lynkist-pages")
        prefetch = _Prefetch(self, pool, window=window, buffer=self._buffer)
        self._prefetch = prefetch
        interrupted = False
        try:
            # Start the next pages before handing over page 1: the consumer's first page is
            # often its slowest (imports, schema set-up), and the workers should not wait on it.
            prefetch.refill()
            self.pages_fetched += 1
            yield first
            for page in prefetch.pages():
                self.pages_fetched += 1
                yield page
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
            raise
        finally:
            prefetch.stop()
            # On Ctrl-C do not wait for pages in flight; on close or errors, do.
            pool.shutdown(wait=not interrupted, cancel_futures=True)


class _Prefetch:
    """Keeps up to ``window`` page requests in flight, refilled from the workers themselves.

    Refilling when a request completes, not when the consumer asks for the next page, keeps the
    network busy while the consumer works on a page (under a rate limit, idle time is lost for
    good). At most ``2 * window`` pages are requested but not yet taken, so memory stays flat.
    """

    def __init__(
        self,
        paginator: ContactPaginator,
        pool: ThreadPoolExecutor,
        *,
        window: int,
        buffer: int | None = None,
    ) -> None:
        self._paginator = paginator
        self._pool = pool
        self.window = window
        #: Most pages requested but not yet taken (two windows unless told otherwise).
        self.buffer = max(buffer or 0, 2 * window)
        self._lock = threading.RLock()  # re-entered when a callback runs at once on a done future
        self._in_flight: set[Future[ContactPage]] = set()
        self._outstanding: set[Future[ContactPage]] = set()  # requested, not yet taken
        self._next_page = 2
        self._stopped = False

    def refill(self) -> None:
        """Request more pages while the window and the buffer allow."""
        with self._lock:
            while (
                not self._stopped
                and self._next_page <= (self._paginator.total_pages or 0)
                and len(self._in_flight) < self.window
                and len(self._outstanding) < self.buffer
            ):
                future = self._pool.submit(
                    self._paginator._limiter.run, self._paginator._fetch, self._next_page
                )
                self._next_page += 1
                self._in_flight.add(future)
                self._outstanding.add(future)
                future.add_done_callback(self._on_done)

    def _on_done(self, future: Future[ContactPage]) -> None:
        with self._lock:
            self._in_flight.discard(future)
            if future.cancelled() or future.exception() is not None:
                self._stopped = True  # the consumer raises it when it gets there
                return
            self._paginator._note(future.result())
        self.refill()

    def pages(self) -> Iterator[ContactPage]:
        """Yield pages in completion order until every known page has been taken."""
        while True:
            with self._lock:
                outstanding = set(self._outstanding)
            if not outstanding:
                return
            done, _ = wait(outstanding, return_when=FIRST_COMPLETED)
            for future in done:
                with self._lock:
                    self._outstanding.discard(future)
                page = future.result()
                # Note and refill here too: the worker's callback may not have run yet, and a
                # page reporting more pages must extend the scan before the loop looks again.
                with self._lock:
                    self._paginator._note(page)
                self.refill()
                yield page

    def stop(self) -> None:
        """Request nothing more."""
        with self._lock:
            self._stopped = True
