"""Token-bucket limiter, Retry-After formatting, and the middleware over real HTTP (uvicorn)."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lynkist_sandbox.ratelimit import (
    RateLimitMiddleware,
    TokenBucketLimiter,
    default_burst,
    format_retry_after,
)
from tests.sandbox.serving import serve

API = "/api/v1/public/contacts"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- limiter -----------------------------------------------------------------------------


def test_burst_then_refill_at_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.try_acquire("k") for _ in range(3)] == [None, None, None]
    wait = limiter.try_acquire("k")
    assert wait == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.try_acquire("k") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.try_acquire("k") is None
    assert limiter.try_acquire("k") == pytest.approx(0.5)
    clock.now += 100  # refill never exceeds the burst
    assert [limiter.try_acquire("k") for _ in range(4)][-1] is not None


def test_keys_have_separate_buckets_and_configure_resets() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=1, burst=1, clock=clock)
    assert limiter.try_acquire("a") is None
    assert limiter.try_acquire("a") is not None
    assert limiter.try_acquire("b") is None
    limiter.configure(rate=10, burst=2)
    assert (limiter.rate, limiter.burst) == (10.0, 2)
    assert [limiter.try_acquire("a") for _ in range(3)] == [None, None, pytest.approx(0.1)]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0), (1, 1.5)])
def test_rejects_bad_limits(rate: float, burst: Any) -> None:
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate=rate, burst=burst)


def test_default_burst() -> None:
    assert [default_burst(r) for r in (0.2, 1, 4.6, 50)] == [1, 1, 5, 50]


def test_thread_safe_under_contention() -> None:
    limiter = TokenBucketLimiter(rate=1e-9, burst=50, clock=FakeClock())  # no refill
    allowed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = sum(limiter.try_acquire("k") is None for _ in range(100))
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50


# --- Retry-After -------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2")])
def test_seconds_style_rounds_up_to_at_least_one(seconds: float, expected: str) -> None:
    assert format_retry_after(seconds, "seconds", rng=random.Random(0)) == expected


def test_http_date_style_is_rfc7231_and_never_early() -> None:
    now = datetime(2026, 5, 12, 8, 0, 0, 300_000, tzinfo=UTC)
    value = format_retry_after(1.5, "http-date", rng=random.Random(0), now=now)
    assert value == "Tue, 12 May 2026 08:00:02 GMT"
    assert parsedate_to_datetime(value) >= now.replace(microsecond=800_000)
    live = format_retry_after(3, "http-date", rng=random.Random(0))
    assert live is not None and live.endswith(" GMT")
    assert parsedate_to_datetime(live).timestamp() >= time.time() + 2


def test_mixed_style_uses_both_forms_reproducibly() -> None:
    def run() -> list[str | None]:
        rng = random.Random(9)
        return [format_retry_after(2, "mixed", rng=rng) for _ in range(40)]

    values = run()
    assert values == run()
    assert "2" in values
    assert any(v is not None and v.endswith(" GMT") for v in values)


def test_none_style_and_unknown_style() -> None:
    assert format_retry_after(2, "none", rng=random.Random(0)) is None
    with pytest.raises(ValueError, match="unknown Retry-After style 'minutes'"):
        format_retry_after(2, "minutes", rng=random.Random(0))


# --- middleware over real HTTP -----------------------------------------------------------


def test_middleware_limits_per_key_on_api_paths_only() -> None:
    inner = FastAPI()
    handled: list[str] = []

    @inner.get(API)
    def contacts() -> dict[str, Any]:
        handled.append("contacts")
        return {"data": []}

    @inner.get("/_sandbox/requests")
    def admin() -> dict[str, Any]:
        handled.append("admin")
        return {"requests": []}

    state: dict[str, Any] = {
        "limiter": TokenBucketLimiter(rate=1, burst=2, clock=FakeClock()),
        "style": "seconds",
    }
    limited: list[dict[str, Any]] = []
    app = RateLimitMiddleware(
        inner,
        get_limiter=lambda: state["limiter"],
        get_retry_after_style=lambda: state["style"],
        on_limited=limited.append,
    )
    key_a = {"Authorization": "Bearer lk_sandbox_a"}
    key_b = {"Authorization": "Bearer lk_sandbox_b"}
    with serve(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        assert [client.get(API, headers=key_a).status_code for _ in range(2)] == [200, 200]
        third = client.get(API, headers=key_a)
        assert third.status_code == 429
        assert third.headers["retry-after"] == "1"
        assert "Rate limit exceeded" in third.json()["detail"]
        assert client.get(API, headers=key_b).status_code == 200
        assert client.get(API).status_code == 200  # no key: not limited (the app answers 401)
        assert client.get("/_sandbox/requests", headers=key_a).status_code == 200
        state["style"] = "none"
        assert "retry-after" not in client.get(API, headers=key_a).headers
        state["limiter"] = None  # rate limiting switched off live
        assert client.get(API, headers=key_a).status_code == 200
    assert handled.count("contacts") == 5
    assert [event["fault"] for event in limited] == ["rate_limited", "rate_limited"]
    assert limited[0]["retry_after"] == "1" and limited[0]["path"] == API
    assert all("lk_sandbox" not in repr(event) for event in limited)
