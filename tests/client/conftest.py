"""Fixtures for the HTTP client's unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.client import LynkistClient, RetryPolicy
from tests.client.helpers import API_KEY, BASE_URL, FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Iterator[Callable[..., LynkistClient]]:
    clients: list[LynkistClient] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response],
        *,
        policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> LynkistClient:
        client = LynkistClient(
            kwargs.pop("base_url", BASE_URL),
            kwargs.pop("api_key", API_KEY),
            retry=policy or fake_time.policy(),
            transport=httpx.MockTransport(handler),
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
