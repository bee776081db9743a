"""Helpers for the HTTP client's unit tests: scripted mock transports and a fake clock."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipelines.client import RetryPolicy

API_KEY = "lk_test_SuperSecretKey_0123456789abcdef"
BASE_URL = "http://lynkist.invalid"
API = "/api/v1/public/contacts"


@dataclass
class FakeTime:
    """Monotonic and wall clocks that only move when something sleeps."""

    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def policy(self, **overrides: Any) -> RetryPolicy:
        return RetryPolicy(
            sleep=self.sleep,
            clock=self.clock,
            wall_clock=self.clock,
            rng=random.Random(7),
            **overrides,
        )


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler answering from a list of steps, recording every request.

    A step is a response, an exception to raise (as the network would), or a callable.
    The last step repeats when the script runs out.
    """

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
        step = self.steps[min(index, len(self.steps) - 1)]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return httpx.Response(
                step.status_code, headers=step.headers, content=step.content, request=request
            )
        return step(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def page_body(page: int, total_pages: int, limit: int = 2) -> dict[str, Any]:
    data = [{"id": f"p{page}-{i}", "first_name": f"n{page}{i}"} for i in range(limit)]
    return {
        "data": data if page <= total_pages else [],
        "pagination": {
            "page": page,
            "limit": limit,
            "total_items": total_pages * limit,
            "total_pages": total_pages,
            "has_next": page < total_pages,
            "has_prev": page > 1,
        },
    }
