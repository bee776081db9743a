"""The warehouse both runners use: where it is, the dlt pipeline, one lock, recovery, reads.

Importing the package is cheap (dlt, pandas and sqlglot are imported on use), so command-line
parsers can take their defaults from it.

A sync (:mod:`pipelines.source.runner`) and a push (:mod:`pipelines.sink.push`) each do::

    warehouse = Warehouse(destination="duckdb", duckdb_path="lynkist_warehouse.duckdb")
    warehouse.check_writable()               # fail before any API call
    pipeline = warehouse.pipeline()          # dlt pipeline <file stem>_<dataset>
    with warehouse_lock(warehouse, command="sync"):
        finish_pending(pipeline)             # what a killed run left behind (bounded)
        pipeline.run(...)
        create_views(pipeline)

and readers (the report, notebooks, tests) use dlt's own read API on the same pipeline:
``warehouse.pipeline().dataset()`` or ``warehouse.pipeline().sql_client()``. Any dlt SQL
destination works: ``Warehouse(destination="postgres", dataset="acme")`` takes its credentials
from dlt's config (``DESTINATION__POSTGRES__CREDENTIALS`` or ``.dlt/secrets.toml``).
"""

from pipelines.warehouse.duck import SqlSource, sql_source
from pipelines.warehouse.errors import (
    WarehouseConfigError,
    WarehouseError,
    WarehouseLockedError,
    WarehouseNotFoundError,
)
from pipelines.warehouse.location import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_FILE,
    Warehouse,
    cannot_create_in,
    load_id_config_key,
)
from pipelines.warehouse.lock import lock_path, warehouse_lock
from pipelines.warehouse.mirror import (
    count_live,
    empty_mirror,
    live_contacts,
    sample_live_ids,
)
from pipelines.warehouse.recovery import (
    MAX_RESUMES,
    PendingLoadError,
    PendingOutcome,
    failure_reason,
    finish_pending,
    start_clean,
)
from pipelines.warehouse.views import create_views

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_DESTINATION",
    "DEFAULT_DUCKDB_FILE",
    "MAX_RESUMES",
    "PendingLoadError",
    "PendingOutcome",
    "SqlSource",
    "Warehouse",
    "WarehouseConfigError",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseNotFoundError",
    "cannot_create_in",
    "count_live",
    "create_views",
    "empty_mirror",
    "failure_reason",
    "finish_pending",
    "live_contacts",
    "load_id_config_key",
    "lock_path",
    "sample_live_ids",
    "sql_source",
    "start_clean",
    "warehouse_lock",
]
