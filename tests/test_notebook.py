"""The analysis notebook runs headless, top to bottom, against a demo warehouse."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from pipelines.report import CHARTS
from tests.analysis_support import DemoWarehouse, duckdb_warehouse  # noqa: F401

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "contacts_analysis.ipynb"


@pytest.fixture
def warehouse(request: pytest.FixtureRequest) -> DemoWarehouse:
    return request.getfixturevalue("duckdb_warehouse")


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    # every chart comes with its "how to read it" sentence, the same one the report shows
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for spec in CHARTS:
        assert spec.caption.replace("\n", " ") in markdown.replace("\n", " "), spec.filename


def test_notebook_executes_headless(
    warehouse: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the python3 kernel must be this interpreter (jupyter_client swaps a bare "python" for
    # sys.executable), so the notebook imports this checkout's packages
    argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    assert argv0 in {"python", "python3", sys.executable}, argv0
    monkeypatch.setenv("LYNKIST_DUCKDB", str(warehouse.duckdb_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == len(CHARTS)
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    live = len(warehouse.live)
    archived = len(warehouse.contacts) - live
    assert f"{live} live contacts, {archived} archived" in text
