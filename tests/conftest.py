"""The one shared sandbox for the whole test session (thread mode, real HTTP on loopback).

``sandbox`` is started once per session; ``sb`` hands it to a test after wiping data and logs
and switching off faults, latency, rate limiting and clock skew, so tests never depend on
order. Tests that need a special start-up configuration build their own ``SandboxServer``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from lynkist_sandbox import SandboxServer
from tests.chaos.figures import FIGURES

# In CI the property tests replay the same examples every run, so a landing is never decided by
# the draw; everywhere else they explore new examples each run (and find what CI cannot).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _dlt_logs_to_this_tests_stderr() -> None:
    """Point dlt's own stderr handler at the stderr of the test about to run.

    dlt binds a ``StreamHandler`` to ``sys.stderr`` the first time a pipeline runs in a process;
    under pytest that is one test's capture stream, closed when the test ends. A later test in the
    same process then sees "--- Logging error --- Traceback" for every dlt log line, so a test of
    "no traceback on stderr" would fail or pass by test order (found under pytest-xdist).
    """
    for handler in logging.getLogger("dlt").handlers:
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stderr


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    # an xdist worker hands its chaos figures to the controller, which prints the sum
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["chaos_figures"] = FIGURES.to_json()


def pytest_testnodedown(node: Any, error: object) -> None:
    figures = getattr(node, "workeroutput", {}).get("chaos_figures")
    if figures:
        FIGURES.merge(figures)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.tests:
        return
    terminalreporter.section("chaos figures")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)
