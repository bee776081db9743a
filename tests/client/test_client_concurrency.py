"""Adaptive concurrency (AIMD), map_concurrent, the paginator and the request statistics."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from pipelines.client import (
    AdaptiveLimiter,
    AuthenticationError,
    ClientStats,
    NotFoundError,
    PermissionDeniedError,
)
from tests.client.helpers import API, page_body


class InFlight:
    """Counts concurrent handler calls and remembers the peak."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.current -= 1


# -- AdaptiveLimiter ---------------------------------------------------------------------


def test_limiter_halves_on_429_and_grows_back_by_one() -> None:
    limiter = AdaptiveLimiter(8, grow_after=3)
    assert limiter.limit == 8
    limiter.on_throttle()
    assert limiter.limit == 4
    limiter.on_throttle()
    assert limiter.limit == 2
    for _ in range(2):
        limiter.on_success()
    assert limiter.limit == 2  # not yet a full run of successes
    limiter.on_success()
    assert limiter.limit == 3
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 8  # never beyond max_concurrency


def test_limiter_never_drops_below_its_minimum() -> None:
    limiter = AdaptiveLimiter(4, min_concurrency=2)
    for _ in range(5):
        limiter.on_throttle()
    assert limiter.limit == 2


def test_a_429_resets_the_run_of_successes() -> None:
    limiter = AdaptiveLimiter(4, grow_after=2)
    limiter.on_throttle()
    limiter.on_success()
    limiter.on_throttle(limiter.current_epoch())  # outside a slot: counts as current
    limiter.on_success()
    assert limiter.limit == 1


def test_stale_429s_from_one_burst_halve_only_once() -> None:
    limiter = AdaptiveLimiter(8)
    epochs = [limiter.acquire() for _ in range(8)]  # a burst, all in flight
    for epoch in epochs:  # ...all answered 429
        limiter.on_throttle(epoch)
        limiter.release()
    assert limiter.limit == 4
    with limiter.slot() as epoch:
        assert limiter.current_epoch() == epoch
        limiter.on_throttle(epoch)  # a request sent after the decrease does count
    assert limiter.limit == 2
    assert limiter.current_epoch() is None


def test_limiter_bounds_threads_to_the_current_limit() -> None:
    limiter = AdaptiveLimiter(6)
    limiter.on_throttle()  # limit 3
    gauge = InFlight()

    def work() -> None:
        with limiter.slot(), gauge:
            time.sleep(0.005)

    threads = [threading.Thread(target=work) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 2 <= gauge.peak <= 3
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    "kwargs", [{"max_concurrency": 0}, {"max_concurrency": 2, "grow_after": 0}]
)
def test_limiter_rejects_nonsense(kwargs) -> None:
    with pytest.raises(ValueError):
        AdaptiveLimiter(**kwargs)


# -- map_concurrent ----------------------------------------------------------------------


def test_map_concurrent_runs_every_item_bounded_and_yields_errors(make_client) -> None:
    gauge = InFlight()

    def handler(request: httpx.Request) -> httpx.Response:
        with gauge:
            time.sleep(0.01)
        contact_id = request.url.path.rsplit("/", 1)[1]
        if contact_id == "c7":
            return httpx.Response(404, json={"detail": "Contact not found"})
        return httpx.Response(200, json={"id": contact_id})

    client = make_client(handler, max_concurrency=4)
    ids = [f"c{i}" for i in range(20)]
    results = dict(client.map_concurrent(lambda i: client.update_contact(i, {"x": 1}), ids))
    assert set(results) == set(ids)
    assert isinstance(results["c7"], NotFoundError)
    assert all(results[i] == {"id": i} for i in ids if i != "c7")
    assert 2 <= gauge.peak <= 4
    assert client.stats.by_endpoint == {"PATCH /contacts/{id}": 20}


def test_map_concurrent_throttles_down_on_429_and_recovers(make_client) -> None:
    gauge = InFlight()
    calls = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        with gauge:
            time.sleep(0.003)
        n = next(calls)
        if n < 12:
            return httpx.Response(429, json={}, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"id": "x"})

    client = make_client(handler, max_concurrency=8)
    client.limiter.grow_after = 4
    seen_limits: list[int] = []

    def patch(i: int) -> dict:
        seen_limits.append(client.limiter.limit)
        return client.update_contact(f"c{i}", {"status": "lead"})

    results = list(client.map_concurrent(patch, range(120)))
    assert all(not isinstance(res, Exception) for _, res in results)
    assert min(seen_limits) < 8  # shrank after the 429s
    assert client.limiter.limit == 8  # and grew back once the API was calm
    assert client.stats.throttled == 12


def test_map_concurrent_streams_from_an_endless_iterable(make_client) -> None:
    client = make_client(lambda req: httpx.Response(200, json={"id": "x"}), max_concurrency=2)
    pulled = itertools.count()

    def items() -> Iterator[int]:
        while True:
            yield next(pulled)

    stream = client.map_concurrent(lambda i: client.get_contact(str(i)), items())
    first = [next(stream) for _ in range(5)]
    stream.close()
    assert len(first) == 5
    assert next(pulled) <= 5 + 2 + 1  # only a window beyond what was consumed


# -- paginator ---------------------------------------------------------------------------


def paging_handler(total_pages: int, gauge: InFlight, counts: Counter, *, delay: float = 0.01):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == API
        page = int(request.url.params["page"])
        with gauge:
            counts[page] += 1
            time.sleep(delay)
        return httpx.Response(200, json=page_body(page, total_pages))

    return handler


def test_iter_contact_pages_fetches_every_page_once_with_bounded_concurrency(make_client):
    gauge, counts = InFlight(), Counter[int]()
    client = make_client(paging_handler(23, gauge, counts), max_concurrency=4)
    pages = client.iter_contact_pages(limit=2)
    got = list(pages)
    assert got[0].page == 1
    assert sorted(p.page for p in got) == list(range(1, 24))
    assert counts == Counter(range(1, 24))  # each page requested exactly once
    assert 2 <= gauge.peak <= 4
    assert len({c["id"] for p in got for c in p.data}) == 46
    assert (pages.total_pages, pages.pages_fetched, pages.total_items) == (23, 23, 46)
    assert client.stats.requests == 23
    assert client.stats.by_method == {"GET": 23}


def test_next_pages_are_requested_while_the_consumer_holds_page_one(make_client) -> None:
    # The consumer's first page is often its slowest (imports, schema set-up): the next pages
    # must already be on their way, not wait for it to ask.
    page_two_requested = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        if page == 2:
            page_two_requested.set()
        return httpx.Response(200, json=page_body(page, 5))

    pages = make_client(handler, max_concurrency=3).iter_contact_pages()
    assert next(pages).page == 1
    assert page_two_requested.wait(timeout=5)
    assert sorted(p.page for p in pages) == [2, 3, 4, 5]


def test_fetching_goes_on_while_the_consumer_is_busy(make_client) -> None:
    # Refilled as requests complete, not as the consumer pulls: up to two windows ahead.
    requested: list[int] = []
    all_ahead = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        requested.append(page)
        if len(requested) == 5:
            all_ahead.set()
        return httpx.Response(200, json=page_body(page, 9))

    pages = make_client(handler, max_concurrency=2).iter_contact_pages()
    assert next(pages).page == 1
    assert all_ahead.wait(timeout=5)  # pages 2-5: two in flight and two more behind them
    time.sleep(0.05)
    assert sorted(requested) == [1, 2, 3, 4, 5]  # and no further while nobody takes them
    assert sorted(p.page for p in pages) == list(range(2, 10))


def test_a_prefetched_listing_runs_before_anyone_iterates(make_client) -> None:
    # lynkist sync starts the listing, then imports dlt: the pages must be fetched meanwhile,
    # beyond the usual two windows, and the later iteration continues that same listing.
    counts = Counter[int]()
    all_fetched = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        counts[page] += 1
        if sum(counts.values()) == 12:
            all_fetched.set()
        return httpx.Response(200, json=page_body(page, 12))

    client = make_client(handler, max_concurrency=2)
    client.prefetch_contact_pages(limit=2, buffer=20)
    assert all_fetched.wait(timeout=10)  # all 12 pages, although two windows are 4

    pages = client.iter_contact_pages(limit=2)
    assert sorted(p.page for p in pages) == list(range(1, 13))
    assert counts == Counter(range(1, 13))  # nothing requested twice
    assert pages.pages_fetched == 12


def test_a_prefetched_listing_is_not_used_for_another_query(make_client) -> None:
    gauge, counts = InFlight(), Counter[int]()
    client = make_client(paging_handler(3, gauge, counts), max_concurrency=2)
    client.prefetch_contact_pages(limit=2)
    assert sorted(p.page for p in client.iter_contact_pages(limit=5)) == [1, 2, 3]
    assert counts[1] == 2  # page 1 of the prefetched listing, then of the new one


def test_a_prefetched_listing_reports_its_error_to_the_consumer(make_client) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "no"})

    client = make_client(handler)
    client.prefetch_contact_pages(limit=2)
    with pytest.raises(PermissionDeniedError):
        next(client.iter_contact_pages(limit=2))


def test_iter_contact_pages_yields_in_completion_order(make_client) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        time.sleep(0.15 if page == 2 else 0.0)
        return httpx.Response(200, json=page_body(page, 4))

    order = [p.page for p in make_client(handler, max_concurrency=4).iter_contact_pages()]
    assert order[0] == 1
    assert order[-1] == 2  # the slow page does not hold back the others
    assert sorted(order) == [1, 2, 3, 4]


def test_iter_contact_pages_follows_pages_added_during_the_scan(make_client) -> None:
    counts: Counter = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        counts[page] += 1
        return httpx.Response(200, json=page_body(page, 3 if page == 1 else 5))

    pages = sorted(p.page for p in make_client(handler).iter_contact_pages())
    assert pages == [1, 2, 3, 4, 5]
    assert counts == Counter(range(1, 6))


def test_iter_contact_pages_on_an_empty_tenant_yields_one_empty_page(make_client) -> None:
    gauge, counts = InFlight(), Counter[int]()
    got = list(make_client(paging_handler(0, gauge, counts)).iter_contact_pages())
    assert [(p.page, p.data, p.total_pages) for p in got] == [(1, [], 0)]
    assert counts == Counter({1: 1})


def test_iter_contact_pages_raises_when_a_page_fails(make_client) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        if page == 3:
            return httpx.Response(401, json={"detail": "Invalid API key"})
        return httpx.Response(200, json=page_body(page, 6))

    with pytest.raises(AuthenticationError):
        list(make_client(handler, max_concurrency=2).iter_contact_pages())


def test_closing_the_paginator_early_stops_fetching(make_client) -> None:
    gauge, counts = InFlight(), Counter[int]()
    pages = make_client(paging_handler(200, gauge, counts), max_concurrency=3).iter_contact_pages()
    next(pages)
    next(pages)
    pages.close()
    requested = sum(counts.values())
    assert requested <= 2 + 2 * 3  # consumed pages plus the two-window prefetch, not 200
    time.sleep(0.05)
    assert sum(counts.values()) == requested


# -- stats -------------------------------------------------------------------------------


def test_stats_count_requests_retries_throttles_and_methods(make_client) -> None:
    answers = iter(
        [
            httpx.Response(429, json={}, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"id": "a"}),
            httpx.Response(503, json={}),
            httpx.Response(200, json={"id": "a"}),
            httpx.Response(404, json={"detail": "nope"}),
            httpx.Response(201, json={"total": 1, "created": 1, "failed": 0, "errors": []}),
        ]
    )
    client = make_client(lambda req: next(answers))
    client.get_contact("a")
    client.update_contact("a", {"status": "x"})
    with pytest.raises(NotFoundError):
        client.delete_contact("a")
    client.bulk_create([{"first_name": "A"}])
    stats = client.stats.snapshot()
    assert (stats.requests, stats.retries, stats.throttled, stats.errors) == (6, 2, 1, 1)
    assert stats.by_method == {"GET": 2, "PATCH": 2, "DELETE": 1, "POST": 1}
    assert stats.by_status == {429: 1, 200: 2, 503: 1, 404: 1, 201: 1}
    assert client.stats.writes == 4
    assert client.stats.as_dict()["by_endpoint"]["POST /contacts/bulk"] == 1


def test_stats_are_thread_safe() -> None:
    stats = ClientStats()

    def hammer() -> None:
        for _ in range(2000):
            stats.record_request("GET", "/contacts")
            stats.record_status(429)
            stats.record_retry()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (stats.requests, stats.throttled, stats.retries) == (16000, 16000, 16000)
    assert stats.by_endpoint == {"GET /contacts": 16000}


@pytest.mark.timeout(20)
def test_nested_concurrency_runs_inline_instead_of_deadlocking(make_client) -> None:
    gauge, counts = InFlight(), Counter[int]()
    client = make_client(paging_handler(5, gauge, counts, delay=0.0), max_concurrency=4)
    for _ in range(3):
        client.limiter.on_throttle()
    assert client.limiter.limit == 1  # one slot, held by the outer worker below

    def scan(_: int) -> list[int]:
        inner = client.map_concurrent(lambda n: n * 2, range(3))
        assert sorted(r for _, r in inner) == [0, 2, 4]
        return sorted(p.page for p in client.iter_contact_pages())

    results = list(client.map_concurrent(scan, range(2)))
    assert [r for _, r in results] == [[1, 2, 3, 4, 5]] * 2
    assert counts == Counter({page: 2 for page in range(1, 6)})
