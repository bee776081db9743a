"""The dlt source for the Lynkist Contacts API: one ``contacts`` resource, merged on ``id``.

Usage (what ``lynkist sync`` does, minus locking and the summary)::

    import dlt
    from pipelines.source import lynkist_source

    pipeline = dlt.pipeline("crm", destination="duckdb", dataset_name="lynkist")
    pipeline.run(lynkist_source("https://api.lynkist.io", api_key))

(dlt names that DuckDB file ``crm.duckdb``; a file named like the dataset would make DuckDB's
catalog and schema collide.) Every row carries its load's ``_dlt_load_id`` (row lineage): the
source fills the column itself, without dlt's ``add_dlt_load_id`` (which may stay on: it writes
the same value, only slower, see :func:`pipelines.source.arrow.with_load_id`).

Each run lists every contact (the API has no server-side filter), compares each with the copy
in the warehouse and loads only what is new, changed or archived; see
:mod:`pipelines.source.reconcile` for the guarantees. Rows are yielded as Arrow tables, which
dlt loads several times faster than dicts; that is also why ``tags`` is a JSON list column
rather than a nested ``contacts__tags`` table.

A value that cannot be stored as sent (a lone surrogate, an unreadable timestamp, a value over
16 MiB) never fails the run: the contact is stored as far as it can be and the value is
reported in a second table, ``contacts_rejected`` (see :mod:`pipelines.source.rejected`).
An unknown field whose column name is taken (``firstName`` next to ``first_name``) gets its
own column (see :func:`pipelines.source.arrow.extra_columns`).

The package imports no dlt (about a second of CPU): :func:`lynkist_source` and
:func:`contacts_resource` live in :mod:`pipelines.source.resource`, loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.source.stats import SyncStats

if TYPE_CHECKING:
    from pipelines.source.resource import contacts_resource, lynkist_source

__all__ = ["SyncStats", "contacts_resource", "lynkist_source"]

#: Names served from :mod:`pipelines.source.resource` when first asked for (it imports dlt).
_RESOURCE_NAMES = frozenset({"contacts_resource", "lynkist_source", "_active_pipeline"})


def __getattr__(name: str) -> Any:
    if name in _RESOURCE_NAMES:
        from pipelines.source import resource

        return getattr(resource, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
