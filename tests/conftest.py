"""The one shared sandbox for the whole test session (thread mode, real HTTP on loopback).

``sandbox`` is started once per session; ``sb`` hands it to a test after wiping data and logs
and switching off faults, latency, rate limiting and clock skew, so tests never depend on
order. Tests that need a special start-up configuration build their own ``SandboxServer``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from lynkist_sandbox import SandboxServer

# In CI the property tests replay the same examples every run, so a landing is never decided by
# the draw; everywhere else they explore new examples each run (and find what CI cannot).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The session's sandbox: thread mode, in-memory, no faults."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sb(sandbox: SandboxServer) -> SandboxServer:
    """The shared sandbox, reset to a clean state for this test."""
    sandbox.admin.restore_defaults()
    return sandbox


@pytest.fixture
def api_key(sb: SandboxServer) -> str:
    """Tenant acme's read-write key."""
    return sb.keys["acme"]["rw"]
