"""Dagster definitions: one contacts asset partitioned by tenant, checks, a schedule, a push job.

* ``lynkist_contacts``: built with dagster-dlt's ``@dlt_assets`` over our ``lynkist_source``,
  one static partition per tenant of ``lynkist.toml``. A partition runs the connector's own
  sync (:func:`pipelines.source.runner.run_sync`: warehouse lock, re-fetch of contacts
  changed during the scan, views) rather than ``DagsterDltResource.run``, which drops dlt's
  local state and runs a bare ``pipeline.run`` without those guarantees. Every partition
  shares the Dagster concurrency pool ``lynkist_api``, which bounds how many tenants sync at
  once on a deployment.
* Asset checks per tenant: the warehouse's live contacts equal the API's ``total_items``, and
  no contact the API serves is marked deleted in the warehouse.
* ``lynkist_sync_schedule``: every tenant, hourly by default.
* ``push_from_model``: a job whose op pushes the rows of a warehouse query or table.
"""

# No ``from __future__ import annotations``: Dagster reads the context and config annotations
# at definition time and needs the real types.
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Config,
    Definitions,
    Failure,
    MaterializeResult,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    StaticPartitionsDefinition,
    asset_check,
    define_asset_job,
    job,
    op,
    schedule,
)
from dagster_dlt import DagsterDltResource, dlt_assets

from pipelines.client import LynkistClient
from pipelines.fleet import tenant_settings
from pipelines.source import lynkist_source
from pipelines.source.settings import SOURCE_NAME, TABLE_NAME
from pipelines.tenants import TenantConfigError, TenantsConfig, load_tenants_config

__all__ = ["CONFIG_ENV", "POOL", "build_defs"]

#: Environment variable naming the tenants file of ``definitions.defs``.
CONFIG_ENV = "LYNKIST_CONFIG"
#: Dagster concurrency pool of every tenant's sync (limit it with ``dagster instance``).
POOL = "lynkist_api"
#: Cron of the schedule unless ``LYNKIST_SYNC_CRON`` says otherwise.
DEFAULT_CRON = "0 * * * *"


@dlt.source(name=SOURCE_NAME)
def _contacts_source(resource: Any) -> Any:
    """``lynkist_source``'s resource as a dlt source (what ``@dlt_assets`` takes)."""
    return resource


def _template_source(base_url: str) -> Any:
    # Only its resources' names and hints are used (asset specs); it never runs.
    placeholder = "lk_template_never_used"
    with LynkistClient(base_url, placeholder) as client:
        return _contacts_source(lynkist_source(base_url, placeholder, client=client))


class PushModelConfig(Config):
    """Run config of ``push_from_model``: the tenant and the model to push."""

    tenant: str
    query: str | None = None
    table: str | None = None
    mapping: str = "auto"
    match_on: str = "email"
    dry_run: bool = False


def _settings(config: TenantsConfig, tenant_name: str) -> Any:
    try:
        tenant = config.get(tenant_name)
        return tenant_settings(config, tenant, config.api_key(tenant), create_views=True)
    except TenantConfigError as exc:
        raise Failure(description=str(exc)) from None


def _sync_partition(context: AssetExecutionContext, config: TenantsConfig) -> MaterializeResult:
    from pipelines.source.runner import run_sync

    settings = _settings(config, context.partition_key)
    summary = run_sync(settings)
    context.log.info(
        "tenant %s: %d new, %d updated, %d deleted, %d rows written",
        context.partition_key,
        summary.new,
        summary.updated,
        summary.deleted,
        summary.rows_written,
    )
    metadata = {
        key: value
        for key, value in summary.to_dict().items()
        if isinstance(value, int | float | str) and key != "warehouse"
    }
    metadata["rows_loaded"] = summary.rows_written
    return MaterializeResult(asset_key=context.asset_key, metadata=metadata)


def _warehouse_counts(settings: Any) -> tuple[int, set[str]]:
    """Live contacts and the ids marked deleted, as the warehouse holds them."""
    from pipelines.source.runner import make_pipeline

    pipeline = make_pipeline(settings)
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(TABLE_NAME)
        rows = client.execute_sql(f"SELECT id, is_deleted FROM {table}") or []
    live = sum(1 for _, deleted in rows if not deleted)
    return live, {str(contact_id) for contact_id, deleted in rows if deleted}


def build_defs(config_path: str | os.PathLike[str]) -> Definitions:
    """Dagster definitions for the tenants of ``config_path``.

    Raises:
        TenantConfigError: The tenants file is missing or wrong (one line saying why).
    """
    config = tenants = load_tenants_config(Path(config_path))
    partitions = StaticPartitionsDefinition(config.names())
    first = tenant_settings(config, config.tenants[0], "")

    from pipelines.source.runner import make_pipeline

    @dlt_assets(
        dlt_source=_template_source(config.defaults.base_url),
        dlt_pipeline=make_pipeline(first),
        name="lynkist_contacts",
        group_name="lynkist",
        partitions_def=partitions,
        pool=POOL,
    )
    def lynkist_contacts(
        context: AssetExecutionContext, dlt: DagsterDltResource
    ) -> Iterator[MaterializeResult]:
        yield _sync_partition(context, config)

    key: AssetKey = next(iter(lynkist_contacts.keys))

    # Partitioned asset checks are a Dagster "preview" feature: say so once, in the docs, not
    # on every load of the code location.
    warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")

    @asset_check(asset=key, partitions_def=partitions, description="live rows = API total_items")
    def contacts_match_api_total(context: AssetCheckExecutionContext) -> AssetCheckResult:
        settings = _settings(config, context.partition_key)
        live, _ = _warehouse_counts(settings)
        with LynkistClient(settings.base_url, settings.api_key) as client:
            total = client.list_contacts(page=1, limit=1).total_items
        return AssetCheckResult(
            passed=live == total,
            metadata={"warehouse_live": live, "api_total_items": total},
        )

    @asset_check(
        asset=key, partitions_def=partitions, description="no contact the API serves is deleted"
    )
    def no_live_contact_marked_deleted(context: AssetCheckExecutionContext) -> AssetCheckResult:
        settings = _settings(config, context.partition_key)
        _, deleted = _warehouse_counts(settings)
        with LynkistClient(settings.base_url, settings.api_key) as client:
            served = {
                str(contact["id"])
                for page in client.iter_contact_pages(limit=100)
                for contact in page.data
            }
        wrong = sorted(deleted & served)
        return AssetCheckResult(
            passed=not wrong,
            severity=AssetCheckSeverity.ERROR,
            metadata={"live_marked_deleted": len(wrong), "examples": ", ".join(wrong[:5])},
        )

    sync_job = define_asset_job("lynkist_sync", selection=[key], partitions_def=partitions)

    @schedule(job=sync_job, cron_schedule=os.environ.get("LYNKIST_SYNC_CRON", DEFAULT_CRON))
    def lynkist_sync_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        for name in config.names():
            yield RunRequest(
                run_key=f"{name}-{context.scheduled_execution_time}", partition_key=name
            )

    @op
    def push_model(context: OpExecutionContext, config: PushModelConfig) -> dict[str, Any]:
        return _push_model(context, tenants=tenants, options=config)

    @job(description="Push the rows of a warehouse query or table into one tenant")
    def push_from_model() -> None:
        push_model()

    return Definitions(
        assets=[lynkist_contacts],
        asset_checks=[contacts_match_api_total, no_live_contact_marked_deleted],
        jobs=[sync_job, push_from_model],
        schedules=[lynkist_sync_schedule],
        resources={"dlt": DagsterDltResource()},
    )


def _push_model(context: OpExecutionContext, *, tenants: TenantsConfig, options: Any) -> dict:
    from pipelines.sink import PushSettings, run_push
    from pipelines.sink.model import ModelInput, ModelReadError, read_model
    from pipelines.source.runner import make_pipeline

    settings = _settings(tenants, options.tenant)
    try:
        model = ModelInput(query=options.query, table=options.table)
        rows = read_model(make_pipeline(settings), model)
    except ModelReadError as exc:
        raise Failure(description=str(exc)) from None
    report = run_push(
        rows,
        PushSettings(
            base_url=settings.base_url,
            api_key=settings.api_key,
            mapping=options.mapping,
            match_on=options.match_on,
            dry_run=options.dry_run,
            duckdb_path=settings.duckdb_path,
            destination=settings.destination,
            dataset=settings.dataset,
            source=model.source,
        ),
    )
    summary = {
        "run_id": report.run_id,
        **{k: v for k, v in report.summary.items() if k != "planned"},
    }
    context.log.info("push %s into %s: %s", report.run_id, options.tenant, summary)
    if report.fatal or report.unavailable:
        raise Failure(description=report.fatal or report.unavailable)
    return summary
