"""Sync many tenants in one process: threads, one global request budget, a result per tenant.

Why threads in one process: a tenant's sync waits on the network most of the time, and a
process per tenant would pay the imports (dlt, DuckDB, pyarrow: ~200 MB) once per tenant. So
``budget // TENANT_CONCURRENCY`` tenants run at once, each on its own thread with its own dlt
pipeline (one per dataset, so no dlt state is shared) and its own :class:`LynkistClient` whose
limit adapts to that tenant's own 429s. Requests in flight therefore never exceed the budget.

DuckDB allows one writer process per file; inside a process, every pipeline on one file goes
through the same database instance (DuckDB's Python client shares one instance per file), whose
transactions let the tenants' loads into separate datasets run side by side. Each tenant holds
its own dataset's warehouse lock (:func:`pipelines.warehouse.warehouse_lock`), so a second
command on the same tenant is refused while the others go on.

A tenant that fails (bad key, API down, destination error) is reported and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipelines.tenants import Tenant, TenantsConfig

__all__ = [
    "TENANT_CONCURRENCY",
    "TenantResult",
    "plan_concurrency",
    "sync_tenants",
    "tenant_settings",
]

#: Requests in flight per tenant (a single ``lynkist sync``'s default).
TENANT_CONCURRENCY = 8


@dataclass
class TenantResult:
    """One tenant's outcome in a many-tenant sync.

    Attributes:
        tenant: Tenant name.
        dataset: Its dataset.
        ok: The sync finished.
        summary: The sync's summary (``None`` when it failed).
        error: One line saying why it failed (never a key), else ``None``.
        duration_s: Wall time of this tenant's sync.
    """

    tenant: str
    dataset: str
    ok: bool
    summary: Any = None
    error: str | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the tenant, its status and error, then the sync summary's fields."""
        data: dict[str, Any] = {
            "tenant": self.tenant,
            "dataset": self.dataset,
            "status": "ok" if self.ok else "failed",
            "error": self.error,
        }
        if self.summary is not None:
            data.update(self.summary.to_dict())
        data["dataset"] = self.dataset
        data["duration_s"] = round(self.duration_s, 3)
        return data


def plan_concurrency(budget: int, tenants: int) -> tuple[int, int]:
    """``(tenants at once, requests per tenant)`` within ``budget`` requests in flight."""
    per_tenant = min(TENANT_CONCURRENCY, budget)
    at_once = max(1, min(tenants, budget // per_tenant))
    return at_once, per_tenant


def _one_line(exc: BaseException) -> str:
    from pipelines.client import LynkistError
    from pipelines.warehouse import WarehouseError

    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, LynkistError | WarehouseError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def tenant_settings(config: TenantsConfig, tenant: Tenant, api_key: str, **overrides: Any) -> Any:
    """One tenant's sync settings (the seam to the single-tenant sync)."""
    from pipelines.source.runner import SyncSettings

    defaults = config.defaults
    return SyncSettings(
        base_url=defaults.base_url,
        api_key=api_key,
        duckdb_path=str(defaults.duckdb),
        destination=defaults.destination,
        dataset=tenant.dataset,
        **overrides,
    )


def sync_tenants(
    config: TenantsConfig,
    tenants: Sequence[Tenant],
    keys: Mapping[str, str],
    *,
    max_concurrency: int | None = None,
    on_done: Callable[[TenantResult], None] | None = None,
    **overrides: Any,
) -> list[TenantResult]:
    """Sync ``tenants``, several at once, each into its own dataset.

    Args:
        config: The tenants file (its ``[defaults]`` say where and from which API).
        tenants: The tenants to sync.
        keys: ``{tenant name: API key}`` (see :meth:`TenantsConfig.api_keys`).
        max_concurrency: Requests in flight over all tenants; default ``[defaults]``'.
        on_done: Called with each tenant's result as it finishes (from a worker thread).
        **overrides: Further :class:`~pipelines.source.runner.SyncSettings` fields for every tenant
            (``full_refresh``, ``retry``, ``create_views``, ...).

    Returns:
        One result per tenant, in the order of ``tenants``.
    """
    from pipelines.source.runner import run_sync

    budget = max_concurrency or config.defaults.max_concurrency
    at_once, per_tenant = plan_concurrency(budget, len(tenants))

    def run(tenant: Tenant) -> TenantResult:
        started = time.monotonic()
        try:
            settings = tenant_settings(
                config, tenant, keys[tenant.name], max_concurrency=per_tenant, **overrides
            )
            summary = run_sync(settings)
            result = TenantResult(tenant.name, tenant.dataset, True, summary=summary)
        except Exception as exc:  # one tenant's failure never stops the others
            result = TenantResult(tenant.name, tenant.dataset, False, error=_one_line(exc))
        result.duration_s = time.monotonic() - started
        if on_done is not None:
            on_done(result)
        return result

    if at_once == 1:
        return [run(tenant) for tenant in tenants]
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="lynkist-tenant") as pool:
        return list(pool.map(run, tenants))
