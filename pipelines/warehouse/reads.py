"""Opening a warehouse for reads: dlt's ``dlt.dataset`` on the same destination, read-only.

Readers (the report, the notebook) need no dlt pipeline state and no write access: a DuckDB
file is opened read-only (several readers at once; a sync writing it makes the open fail with
a clear message), any other destination through its usual credentials.
"""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import Any

import dlt
import pandas as pd

from pipelines.warehouse.errors import WarehouseError, WarehouseNotFoundError
from pipelines.warehouse.location import Warehouse

__all__ = ["WarehouseReader", "open_for_reads"]


class WarehouseReader:
    """An open read connection to a warehouse's dataset (unqualified names resolve in it).

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, warehouse: Warehouse, dataset: Any) -> None:
        self.warehouse = warehouse
        self._dataset = dataset
        self._client = dataset.sql_client

    @property
    def dialect(self) -> str:
        """The destination's sqlglot dialect (``duckdb``, ``postgres``, ...)."""
        return str(self._client.capabilities.sqlglot_dialect)

    def tables(self) -> tuple[dict[str, dict[str, str]], set[str]]:
        """Tables (name -> column -> type) and views of the dataset."""
        rows = self._client.execute_sql(
            "SELECT c.table_name, c.column_name, c.data_type, t.table_type "
            "FROM information_schema.columns AS c JOIN information_schema.tables AS t "
            "ON c.table_catalog = t.table_catalog AND c.table_schema = t.table_schema "
            "AND c.table_name = t.table_name "
            "WHERE c.table_catalog = current_database() AND c.table_schema = %s",
            self._client.dataset_name,
        )
        tables: dict[str, dict[str, str]] = {}
        views: set[str] = set()
        for table, column, data_type, table_type in rows or []:
            if table_type == "VIEW":
                views.add(table)
            else:
                tables.setdefault(table, {})[column] = str(data_type)
        return tables, views

    def frame(self, sql: str) -> pd.DataFrame:
        """The rows of ``sql`` as a DataFrame."""
        with self._client.execute_query(sql) as cursor, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
            frame = cursor.df()
        if frame is None:  # no rows: dlt's cursor returns None for an empty result
            columns = [d[0] for d in cursor.native_cursor.description or []]
            return pd.DataFrame(columns=columns)
        return frame

    def close(self) -> None:
        """Close the connection."""
        self._dataset.__exit__(None, None, None)

    def __enter__(self) -> WarehouseReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_for_reads(warehouse: Warehouse) -> WarehouseReader:
    """Open ``warehouse``'s dataset for reading.

    Args:
        warehouse: The warehouse (a DuckDB file is opened read-only).

    Returns:
        An open :class:`WarehouseReader`; close it when done.

    Raises:
        WarehouseNotFoundError: No DuckDB file, or no such dataset in the warehouse.
        WarehouseError: The warehouse cannot be opened (a sync holds the DuckDB file, the
            server is unreachable, ...).
    """
    where = warehouse.describe()
    if warehouse.is_duckdb and not warehouse.duckdb_file.is_file():
        raise WarehouseNotFoundError(f"no warehouse at {where}: run `lynkist sync` first")
    dataset = dlt.dataset(warehouse.destination_factory(read_only=True), warehouse.dataset)
    try:
        dataset.__enter__()
    except Exception as exc:
        hint = ", is a sync running?" if warehouse.is_duckdb else ""
        raise WarehouseError(
            f"cannot open {where} for reading{hint} ({_first_line(exc)})"
        ) from None
    reader = WarehouseReader(warehouse, dataset)
    try:
        exists = reader._client.has_dataset()
    except Exception as exc:
        reader.close()
        raise WarehouseError(f"cannot read {where} ({_first_line(exc)})") from None
    if not exists:
        reader.close()
        raise WarehouseNotFoundError(
            f"{where} holds no `{warehouse.dataset}` dataset: run `lynkist sync`"
        )
    return reader


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
