"""Page-number pagination over ``GET /contacts``: page 1, then the rest concurrently.

Page 1 says how many pages there are; pages 2..N are then fetched in parallel (bounded and
adapted by the client's :class:`~pipelines.client.concurrency.AdaptiveLimiter`) and yielded in
the order they complete, so memory holds at most a window of pages however large the tenant.
If a later page reports more pages than known (contacts added during the scan), the extra
pages are fetched too; every page number is requested exactly once.
"""

from __future__ import annotations

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

    def __iter__(self) -> ContactPaginator:
        return self

    def __next__(self) -> ContactPage:
        if self._pages is None:
            self._pages = self._run()
        return next(self._pages)

    def close(self) -> None:
        """Stop early: cancel pages not yet started and wait for those in flight."""
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
        pending: set[Future[ContactPage]] = set()
        next_page = 2

        def refill() -> None:
            nonlocal next_page
            while next_page <= (self.total_pages or 0) and len(pending) < window:
                pending.add(pool.submit(self._limiter.run, self._fetch, next_page))
                next_page += 1

        interrupted = False
        try:
            # Start the next pages before handing over page 1: the consumer's first page is
            # often its slowest (imports, schema set-up), and the workers should not wait on it.
            refill()
            self.pages_fetched += 1
            yield first
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                pending.difference_update(done)
                ready = [future.result() for future in done]
                for page in ready:
                    self._note(page)
                # Refill before yielding so that workers stay busy while the consumer works.
                refill()
                for page in ready:
                    self.pages_fetched += 1
                    yield page
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
            raise
        finally:
            # On Ctrl-C do not wait for pages in flight; on close or errors, do.
            pool.shutdown(wait=not interrupted, cancel_futures=True)
