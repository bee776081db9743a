"""Where a command finds the API: ``--base-url`` / ``--api-key``, the environment, dlt config.

Shared by every command that talks to the API, so the precedence is the same everywhere:
flag > environment (``LYNKIST_BASE_URL``, ``LYNKIST_API_KEY``) > dlt's providers
(``[sources.lynkist]`` in ``.dlt/config.toml`` / ``.dlt/secrets.toml``) > default.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pipelines.cli import UsageError
from pipelines.contact import DEFAULT_BASE_URL

API_KEY_ENV = "LYNKIST_API_KEY"
BASE_URL_ENV = "LYNKIST_BASE_URL"


DEFAULT_TIMEOUT_S = 30.0


def _seconds(value: str) -> float:
    """argparse type of ``--timeout``: a positive number of seconds."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of seconds")
    return seconds


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--base-url``, ``--api-key`` and ``--timeout``."""
    parser.add_argument(
        "--base-url", help=f"API root (env {BASE_URL_ENV}; default {DEFAULT_BASE_URL})"
    )
    parser.add_argument(
        "--api-key",
        help=f"tenant API key (env {API_KEY_ENV} — preferred: flags are visible in `ps`)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"wait at most this long for each answer of the API (default: {DEFAULT_TIMEOUT_S:g})",
    )


def _dlt_value(key: str, *, secret: bool) -> str | None:
    """A value from dlt's providers (env, .dlt/secrets.toml, .dlt/config.toml), if present."""
    import dlt

    provider = dlt.secrets if secret else dlt.config
    try:
        value: Any = provider.get(key)
    except Exception:  # unreadable toml: treat as absent, the message below says what to set
        return None
    return str(value) if value else None


def first_setting(flag: str | None, env: str, dlt_key: str, *, secret: bool) -> str | None:
    """One setting by the shared precedence: flag > environment > dlt's providers.

    dlt is imported only when neither the flag nor the environment has the value, so a
    command configured by its environment starts without it.
    """
    return flag or os.environ.get(env) or _dlt_value(dlt_key, secret=secret)


def resolve_credentials(args: argparse.Namespace) -> tuple[str, str]:
    """Base URL and API key by precedence: flag > environment > dlt config > default.

    Raises:
        UsageError: No API key anywhere.
    """
    base_url = (
        first_setting(args.base_url, BASE_URL_ENV, "sources.lynkist.base_url", secret=False)
        or DEFAULT_BASE_URL
    )
    api_key = first_setting(args.api_key, API_KEY_ENV, "sources.lynkist.api_key", secret=True)
    if not api_key:
        raise UsageError(
            f"no API key: set {API_KEY_ENV}, pass --api-key, or add api_key under "
            "[sources.lynkist] in .dlt/secrets.toml"
        )
    return base_url, api_key
