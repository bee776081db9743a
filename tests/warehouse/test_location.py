"""Where a warehouse lives, its pipeline names, and the one writability check."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.warehouse import DEFAULT_DUCKDB_FILE, Warehouse, WarehouseConfigError


def test_default_file_does_not_collide_with_the_default_dataset() -> None:
    warehouse = Warehouse()
    assert Path(DEFAULT_DUCKDB_FILE).stem != warehouse.dataset
    warehouse_name = warehouse.pipeline_name_resolved
    assert warehouse_name == "lynkist_warehouse_lynkist"
    assert warehouse.push_pipeline_name == "lynkist_warehouse_lynkist_push"
    assert Warehouse(destination="postgres", dataset="acme").pipeline_name_resolved == (
        "lynkist_postgres_acme"
    )


def test_a_file_named_like_the_dataset_is_refused_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(WarehouseConfigError, match="rename the file"):
        Warehouse(duckdb_path=tmp_path / "lynkist.duckdb").check_writable()
    Warehouse(duckdb_path=tmp_path / "lynkist.duckdb", dataset="crm").check_writable()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "is a directory"),
        (lambda d: d / "missing" / "w.duckdb", "does not exist"),
        (lambda d: d / "file" / "w.duckdb", "is not a directory"),
    ],
)
def test_unwritable_paths_are_config_errors(tmp_path: Path, make: object, message: str) -> None:
    (tmp_path / "file").write_text("x")
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(WarehouseConfigError, match=message):
        Warehouse(duckdb_path=path).check_writable()


def test_other_destinations_keep_their_state_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    warehouse = Warehouse(destination="postgres", dataset="acme")
    assert warehouse.working_dir == tmp_path / ".lynkist" / "pipelines"
    assert warehouse.describe() == "postgres dataset 'acme'"
    with pytest.raises(WarehouseConfigError, match="unknown destination"):
        Warehouse(destination="nosuchdb").destination_factory()
