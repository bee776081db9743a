"""Start-up configuration of the sandbox API server."""

from __future__ import annotations

from dataclasses import dataclass, field

from lynkist_sandbox.faults import FaultSpec

RETRY_AFTER_STYLES = ("seconds", "http-date", "mixed", "none")


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox server.

    Attributes:
        db_path: SQLite file; ``None`` keeps the data in memory.
        seed_contacts: Contacts generated into tenant ``acme`` at start-up.
        seed: Seed of the generated demo data (deterministic per seed).
        latency_ms: Delay added to every ``/api`` request (non-blocking sleep).
        rate_limit: Requests per second per API key (token bucket); ``None`` disables it.
        burst: Bucket size; defaults to ``max(1, round(rate_limit))``.
        retry_after: ``Retry-After`` style on 429: seconds, http-date, mixed or none.
        faults: Fault-injection shares (5xx, 429, dropped connections, slow answers).
        idempotent_bulk: Honour ``Idempotency-Key`` on ``POST /contacts/bulk`` too.
        idempotency_ttl_s: How long idempotency keys are kept.
        webhook_urls: Receivers of ``contact.*`` events.
        webhook_secret: HMAC secret that signs webhook deliveries.
        webhook_max_attempts: Attempts per delivery, the first included.
        webhook_backoff_s: Wait before a delivery's first retry (doubles, capped at 8 s).
        webhook_workers: Concurrent delivery threads.
        api_keys: Fixed keys ``{tenant: {"rw"|"ro"|"wo": key}}``; random when ``None``.
        admin_token: Fixed token of the ``/_sandbox`` admin API; random when ``None``.
    """

    db_path: str | None = None
    seed_contacts: int = 0
    seed: int = 0
    latency_ms: float = 0.0
    rate_limit: float | None = None
    burst: int | None = None
    retry_after: str = "seconds"
    faults: FaultSpec = field(default_factory=FaultSpec)
    idempotent_bulk: bool = False
    idempotency_ttl_s: int = 86400
    webhook_urls: list[str] = field(default_factory=list)
    webhook_secret: str = "whsec_sandbox_demo"
    webhook_max_attempts: int = 5
    webhook_backoff_s: float = 0.5
    webhook_workers: int = 2
    api_keys: dict[str, dict[str, str]] | None = None
    admin_token: str | None = None

    def effective_burst(self) -> int | None:
        """The token-bucket size in force, or ``None`` when rate limiting is off."""
        if self.rate_limit is None:
            return None
        return self.burst if self.burst is not None else max(1, round(self.rate_limit))
