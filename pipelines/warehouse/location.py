"""Where a warehouse lives and the dlt pipeline that writes it.

A :class:`Warehouse` names a destination (a DuckDB file, or any dlt SQL destination by name
with dlt's usual credentials config) and a dataset. Everything else is derived from it: the dlt
working directory (so two warehouses never share dlt state), the pipeline names, the lock and
state files.

The default DuckDB file is :data:`DEFAULT_DUCKDB_FILE` (``lynkist_warehouse.duckdb``): DuckDB
names a file's catalog after its stem, and a file called ``lynkist.duckdb`` would make catalog
and dataset ``lynkist`` collide (``lynkist.contacts`` is then ambiguous). With the default name a
plain ``duckdb.connect("lynkist_warehouse.duckdb").sql("select * from lynkist.contacts")`` works,
and so do dlt's own tools (``dlt pipeline <name> info``, ``dlt.attach(name).dataset()``).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.warehouse.errors import WarehouseConfigError

if TYPE_CHECKING:
    import dlt

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_DESTINATION",
    "DEFAULT_DUCKDB_FILE",
    "DUCKDB_MEMORY_LIMIT",
    "Warehouse",
    "cannot_create_in",
]

#: The default warehouse file, in the working directory. Not ``lynkist.duckdb``: see the module
#: docstring (DuckDB's catalog would collide with the dataset).
DEFAULT_DUCKDB_FILE = "lynkist_warehouse.duckdb"
#: Bytes 8-11 of every DuckDB database file (its header's magic).
DUCKDB_MAGIC = b"DUCK"


def is_duckdb_file(path: Path) -> bool:
    """Whether the existing file ``path`` starts with DuckDB's header (an unreadable one: no)."""
    try:
        with path.open("rb") as file:
            return file.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


DEFAULT_DATASET = "lynkist"
DEFAULT_DESTINATION = "duckdb"

#: DuckDB's cap on its own buffers (it spills to disk beyond): the merge's dedup of a large
#: load would otherwise grow with the tenant, and a scheduled sync should keep a flat footprint.
DUCKDB_MEMORY_LIMIT = "128MB"

_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("_", text.lower()).strip("_") or "x"


def cannot_create_in(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or ``None`` when one can.

    ``os.access`` is not enough: it says yes to root everywhere, also on a read-only mount or a
    pseudo file system such as ``/proc``. So a directory counts as writable only once a file was
    actually created in it.

    Args:
        directory: An existing directory.

    Returns:
        The operating system's reason (e.g. "Permission denied"), or ``None``.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".lynkist-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def load_id_config_key(pipeline_name: str) -> str:
    """dlt's config key that makes the pipeline add ``_dlt_load_id`` to Arrow tables."""
    return f"{pipeline_name}.normalize.parquet_normalizer.add_dlt_load_id"


@dataclass(frozen=True)
class Warehouse:
    """One warehouse: a destination plus a dataset.

    Attributes:
        destination: dlt destination name, e.g. ``duckdb`` or ``postgres`` (whose credentials
            come from dlt config: ``DESTINATION__POSTGRES__CREDENTIALS`` or secrets.toml).
        duckdb_path: The DuckDB file (destination ``duckdb`` only).
        dataset: Dataset (schema) name.
        pipelines_dir: dlt working directory; default ``.lynkist/pipelines`` beside the DuckDB
            file, or under the current directory for other destinations.
        pipeline_name: Name of the sync pipeline; default derived from file/destination and
            dataset (see :attr:`pipeline_name_resolved`).
    """

    destination: str = DEFAULT_DESTINATION
    duckdb_path: str | os.PathLike[str] = DEFAULT_DUCKDB_FILE
    dataset: str = DEFAULT_DATASET
    pipelines_dir: str | os.PathLike[str] | None = None
    pipeline_name: str | None = None

    @property
    def is_duckdb(self) -> bool:
        """Whether the destination is a local DuckDB file."""
        return self.destination == "duckdb"

    @property
    def duckdb_file(self) -> Path:
        """The DuckDB file as an absolute path."""
        return Path(self.duckdb_path).expanduser().resolve()

    @property
    def working_dir(self) -> Path:
        """The dlt working directory (pipelines' state, load packages, lock files)."""
        if self.pipelines_dir:
            return Path(self.pipelines_dir).expanduser().resolve()
        base = self.duckdb_file.parent if self.is_duckdb else Path.cwd()
        return base / ".lynkist" / "pipelines"

    @property
    def pipeline_name_resolved(self) -> str:
        """The sync pipeline's name: ``<file stem>_<dataset>`` for DuckDB (e.g.
        ``lynkist_warehouse_lynkist``), ``lynkist_<destination>_<dataset>`` otherwise."""
        if self.pipeline_name:
            return self.pipeline_name
        if self.is_duckdb:
            return f"{_slug(self.duckdb_file.stem)}_{_slug(self.dataset)}"
        return f"lynkist_{_slug(self.destination)}_{_slug(self.dataset)}"

    @property
    def push_pipeline_name(self) -> str:
        """The pipeline that appends ``push_results`` (same destination and dataset)."""
        return f"{self.pipeline_name_resolved}_push"

    def state_path(self, suffix: str) -> Path:
        """A file of this warehouse in the dlt working directory, e.g. ``.lock``."""
        return self.working_dir / f"{self.pipeline_name_resolved}{suffix}"

    def describe(self) -> str:
        """The warehouse for messages: the DuckDB file, or destination and dataset."""
        if self.is_duckdb:
            return str(self.duckdb_file)
        return f"{self.destination} dataset {self.dataset!r}"

    def check_writable(self, *, flag: str = "--duckdb") -> None:
        """Fail early, before any API call, when the warehouse cannot be written.

        For DuckDB: the path is no directory, its directory exists and accepts new files (the
        WAL, the lock), and the file (if any) is writable; the file name does not collide with
        the dataset. Other destinations are checked when dlt connects.

        Args:
            flag: The option named in messages.

        Raises:
            WarehouseConfigError: Says what is wrong and what to do.
        """
        if not self.is_duckdb:
            return
        db = self.duckdb_file
        shown = f"{flag} {self.duckdb_path}"
        if db.is_dir():
            raise WarehouseConfigError(
                f"{shown} is a directory; give a file path such as {db / DEFAULT_DUCKDB_FILE}"
            )
        if not db.parent.is_dir():
            problem = "is not a directory" if db.parent.exists() else "does not exist"
            raise WarehouseConfigError(
                f"cannot create the warehouse {shown}: {db.parent} {problem}"
            )
        reason = cannot_create_in(db.parent)
        if reason:
            raise WarehouseConfigError(
                f"{shown}: cannot create files in {db.parent} ({reason}) — choose a "
                "warehouse file in a directory you can write"
            )
        if db.exists() and not os.access(db, os.W_OK):
            raise WarehouseConfigError(f"cannot write the warehouse {db}: permission denied")
        if db.is_file() and not is_duckdb_file(db):
            # else DuckDB's refusal surfaces deep inside dlt, as a cascade of tracebacks
            raise WarehouseConfigError(
                f"{shown} exists and is not a DuckDB database — give the path of a DuckDB "
                "warehouse, or a new file name to create one"
            )
        if db.stem.lower() == self.dataset.lower():
            raise WarehouseConfigError(
                f"{shown}: DuckDB names the file's catalog {db.stem!r}, the same as the dataset "
                f"{self.dataset!r}, which makes {self.dataset}.contacts ambiguous — rename the "
                f"file (e.g. {DEFAULT_DUCKDB_FILE}) or choose another --dataset"
            )

    def destination_factory(self, *, read_only: bool = False) -> Any:
        """The dlt destination object of this warehouse.

        Args:
            read_only: Open a DuckDB file read-only (readers; no effect on other destinations).

        Raises:
            WarehouseConfigError: Unknown destination name.
        """
        # dlt is imported on use: the CLI builds its parsers from this module's defaults, and
        # `lynkist --help` should not pay for importing dlt.
        import dlt
        from dlt.common.destination import Destination
        from dlt.common.destination.exceptions import DestinationException

        if self.is_duckdb:
            from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

            credentials = DuckDbCredentials(
                str(self.duckdb_file),
                read_only=read_only,
                global_config={"memory_limit": DUCKDB_MEMORY_LIMIT},
            )
            return dlt.destinations.duckdb(credentials=credentials)
        try:
            return Destination.from_reference(self.destination)
        except (DestinationException, ImportError) as exc:
            raise WarehouseConfigError(
                f"unknown destination {self.destination!r}: use a dlt destination name "
                "such as duckdb or postgres"
            ) from exc

    def pipeline(self, name: str | None = None) -> dlt.Pipeline:
        """The dlt pipeline writing this warehouse (created on first use, state kept).

        Args:
            name: Pipeline name; default the sync pipeline's (:attr:`pipeline_name_resolved`).

        Raises:
            WarehouseConfigError: Unknown destination name.
        """
        import dlt

        name = name or self.pipeline_name_resolved
        # The source yields Arrow tables, which dlt loads without ``_dlt_load_id`` unless told:
        # lineage for every row, scoped to this pipeline (dlt's config section = its name).
        dlt.config[load_id_config_key(name)] = True
        pipeline = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(self.working_dir),
            destination=self.destination_factory(),
            dataset_name=self.dataset,
        )
        if self.is_duckdb:
            # dlt keeps no credentials in a pipeline's state, so `dlt.attach(name)` and
            # `dlt pipeline <name> show` would look for `<name>.duckdb` in the first run's
            # working directory. dlt's local state key `duckdb_database` records the file.
            db = str(self.duckdb_file)
            try:
                known = pipeline.get_local_state_val("duckdb_database")
            except KeyError:
                known = None
            if known != db:
                pipeline.set_local_state_val("duckdb_database", db)
        return pipeline
