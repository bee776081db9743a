"""Everything one running sandbox holds: data, keys, settings, logs, hooks, webhooks."""

from __future__ import annotations

import dataclasses
from typing import Any

from lynkist_sandbox.auth import KeyRing, new_admin_token
from lynkist_sandbox.clock import Clock
from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.db import Database
from lynkist_sandbox.faults import FaultSpec
from lynkist_sandbox.hooks import ScanHooks
from lynkist_sandbox.idempotency import IdempotencyStore
from lynkist_sandbox.ratelimit import RETRY_AFTER_STYLES, TokenBucketLimiter
from lynkist_sandbox.requestlog import RequestLog
from lynkist_sandbox.store import ContactStore
from lynkist_sandbox.webhooks import WebhookDispatcher

#: Settings the admin API may change live (``PUT /_sandbox/settings``).
LIVE_SETTINGS = ("latency_ms", "rate_limit", "burst", "retry_after", "idempotent_bulk")


class SandboxState:
    """The live state behind one sandbox app.

    ``config`` is a private copy: live settings changes update it, never the caller's object.
    """

    def __init__(self, config: SandboxConfig) -> None:
        """Open the database and create keys, logs and the webhook dispatcher."""
        self.config = dataclasses.replace(config, webhook_urls=list(config.webhook_urls))
        self.keyring = KeyRing(config.api_keys)
        self.admin_token = config.admin_token or new_admin_token()
        self.db = Database(config.db_path)
        self.contacts = ContactStore(self.db)
        self.idempotency = IdempotencyStore(self.db, config.idempotency_ttl_s)
        self.clock = Clock()
        self.requests = RequestLog()
        self.hooks = ScanHooks()
        self.faults: FaultSpec = config.faults
        self.webhooks = WebhookDispatcher(
            list(config.webhook_urls),
            config.webhook_secret,
            max_attempts=config.webhook_max_attempts,
            backoff_s=config.webhook_backoff_s,
            workers=config.webhook_workers,
        )
        self.limiter: TokenBucketLimiter | None = None
        self._rebuild_limiter()

    def _rebuild_limiter(self) -> None:
        burst = self.config.effective_burst()
        if self.config.rate_limit is None or burst is None:
            self.limiter = None
        else:
            self.limiter = TokenBucketLimiter(self.config.rate_limit, burst)

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply live settings (validated first, so a bad value changes nothing).

        Raises:
            ValueError: On an unknown setting or an invalid value.
        """
        unknown = sorted(set(changes) - set(LIVE_SETTINGS))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {list(LIVE_SETTINGS)}")
        candidate = dataclasses.replace(self.config, **changes)
        if candidate.retry_after not in RETRY_AFTER_STYLES:
            raise ValueError(f"retry_after must be one of {list(RETRY_AFTER_STYLES)}")
        if candidate.latency_ms < 0:
            raise ValueError("latency_ms must be ≥ 0")
        burst = candidate.effective_burst()
        if candidate.rate_limit is not None and burst is not None:
            TokenBucketLimiter(candidate.rate_limit, burst)  # raises on bad numbers
        self.config = candidate
        if {"rate_limit", "burst"} & set(changes):
            self._rebuild_limiter()
        return self.settings()

    def settings(self) -> dict[str, Any]:
        """The live settings."""
        return {name: getattr(self.config, name) for name in LIVE_SETTINGS}

    def reset(self) -> None:
        """Delete contacts, idempotency keys, the request log, hooks and webhook deliveries."""
        with self.db.transaction():
            self.contacts.clear()
            self.idempotency.clear()
        self.requests.clear()
        self.hooks.clear()
        self.webhooks.clear()
        if self.limiter is not None:
            self._rebuild_limiter()

    def close(self) -> None:
        """Close the database (the app's lifespan stops the webhook dispatcher)."""
        self.db.close()
