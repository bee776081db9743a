"""``transforms`` is pure: it imports nothing from ``pipelines`` (no cycle) and does no I/O
beyond what its readers and writers are for."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TRANSFORMS = Path(__file__).resolve().parents[2] / "transforms"


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_transforms_import_nothing_from_pipelines() -> None:
    offenders = {
        path.name: sorted(m for m in _imported_modules(path) if m.split(".")[0] == "pipelines")
        for path in TRANSFORMS.rglob("*.py")
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_importing_transforms_loads_no_pipelines_module() -> None:
    code = (
        "import sys, transforms.cleaning, transforms.mapping, transforms.csv_io, "
        "transforms.phones, transforms.contact; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pipelines'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
