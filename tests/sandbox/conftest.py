"""Helpers for the sandbox contract tests: httpx clients bound to a tenant's key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH

ApiFactory = Callable[..., httpx.Client]


def api_client(server: SandboxServer, tenant: str = "acme", kind: str = "rw") -> httpx.Client:
    """An httpx client for ``/api/v1/public/contacts`` with one of the tenant's keys."""
    return httpx.Client(
        base_url=server.base_url + API_BASE_PATH,
        headers={"Authorization": f"Bearer {server.keys[tenant][kind]}"},
        timeout=30,
        trust_env=False,
    )


@pytest.fixture(scope="session")
def _clients(sandbox: SandboxServer) -> Iterator[dict[tuple[str, str], httpx.Client]]:
    # Clients are kept for the session: building one (its SSL context) costs more than a call.
    clients: dict[tuple[str, str], httpx.Client] = {}
    yield clients
    for http in clients.values():
        http.close()


@pytest.fixture
def api(sb: SandboxServer, _clients: dict[tuple[str, str], httpx.Client]) -> ApiFactory:
    """Factory of API clients: ``api()`` is acme rw, ``api("globex", "ro")`` etc."""

    def make(tenant: str = "acme", kind: str = "rw") -> httpx.Client:
        if (tenant, kind) not in _clients:
            _clients[tenant, kind] = api_client(sb, tenant, kind)
        return _clients[tenant, kind]

    return make


@pytest.fixture(scope="session")
def raw(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client of the sandbox's root URL without credentials."""
    with httpx.Client(base_url=sandbox.base_url, timeout=30, trust_env=False) as http:
        yield http


@pytest.fixture
def client(api: ApiFactory) -> httpx.Client:
    """Tenant acme, read-write key."""
    return api()


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Create a contact (``first_name`` defaults to ``"Ann"``) and return it."""
    fields.setdefault("first_name", "Ann")
    response = client.post("", json=fields)
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()
    return contact
