"""One bounded wait for the tests: poll a condition on something outside the test's control.

A test that drives another process (the CLI, the listener, a webhook receiver) cannot be handed
an event by it; it polls what it can see (a file, the sandbox's request log) with a deadline,
here, instead of sleeping a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object], what: str = "condition", *, timeout: float = 60.0
) -> None:
    """Return as soon as ``check()`` is truthy; fail naming ``what`` after ``timeout`` seconds.

    Raises:
        AssertionError: The condition did not hold within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)
