"""A DuckDB warehouse read (and written) by SQL, without importing dlt.

Importing dlt and setting up a pipeline cost about a second whatever the work; a push of a few
rows against a synced mirror needs only a few queries. :func:`sql_source` gives, for a DuckDB
warehouse, an object with the one method of a dlt pipeline that the warehouse's queries use —
``sql_client()`` — backed by a plain DuckDB connection, so the same query code
(:mod:`pipelines.warehouse.mirror`, :func:`~pipelines.warehouse.views.create_views`) serves both.
Other destinations get their dlt pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.warehouse.location import DUCKDB_MEMORY_LIMIT, Warehouse

__all__ = ["DuckDBSource", "DuckDBSqlClient", "SqlSource", "quoted", "sql_source"]


class SqlSource(Protocol):
    """What the warehouse's queries need of a dlt pipeline: its SQL client."""

    def sql_client(self) -> Any:
        """A context manager giving a client with dlt's SQL client methods we use."""


def quoted(name: str) -> str:
    """``name`` as a quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Capabilities:
    sqlglot_dialect: str = "duckdb"


class DuckDBSqlClient:
    """The part of dlt's SQL client API our queries use, over an open DuckDB connection.

    Attributes:
        native_connection: The DuckDB connection.
        dataset_name: The dataset (schema) tables are qualified with.
    """

    capabilities = _Capabilities()

    def __init__(self, con: Any, dataset_name: str) -> None:
        self.native_connection = con
        self.dataset_name = dataset_name

    def make_qualified_table_name(self, table_name: str) -> str:
        """``"dataset"."table"``, as dlt's DuckDB client qualifies it."""
        return f"{quoted(self.dataset_name)}.{quoted(table_name)}"

    def execute_sql(self, sql: str, *args: Any) -> Sequence[Sequence[Any]] | None:
        """Run ``sql`` (``%s`` placeholders, as with dlt); its rows, or None without a result."""
        if args:
            sql = sql.replace("%s", "?")  # as dlt's DuckDB client does
        cursor = self.native_connection.execute(sql, list(args) if args else None)
        return None if cursor.description is None else cursor.fetchall()

    @contextmanager
    def begin_transaction(self) -> Iterator[None]:
        """One transaction: committed at the end, rolled back on any exception."""
        con = self.native_connection
        con.begin()
        try:
            yield
        except BaseException:
            con.rollback()
            raise
        con.commit()


@dataclass(frozen=True)
class DuckDBSource:
    """A DuckDB warehouse as a :class:`SqlSource`: each ``sql_client()`` is a new connection."""

    warehouse: Warehouse

    @contextmanager
    def sql_client(self) -> Iterator[DuckDBSqlClient]:
        """An open client on the warehouse file (closed at the end of the block)."""
        import duckdb

        with duckdb.connect(
            str(self.warehouse.duckdb_file), config={"memory_limit": DUCKDB_MEMORY_LIMIT}
        ) as con:
            yield DuckDBSqlClient(con, self.warehouse.dataset)


def sql_source(warehouse: Warehouse) -> SqlSource:
    """What the warehouse's queries run on: DuckDB directly, else the sync's dlt pipeline."""
    if warehouse.is_duckdb:
        return DuckDBSource(warehouse)
    return warehouse.pipeline()
