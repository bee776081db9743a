"""The connector installs without the sandbox's web stack; the sandbox says which extra it needs.

The installed distribution's metadata is what ``pip install .`` reads (hatchling writes the same
``Requires-Dist`` lines into the wheel), so the closure of its requirements — evaluated without
extras, through the metadata of every installed dependency — is what a plain install pulls.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, requires

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipelines.cli import main

SANDBOX_ONLY = {"fastapi", "uvicorn", "faker", "starlette"}


def _closure(project: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Names of every distribution ``project[extras]`` pulls in (markers evaluated here)."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [(canonicalize_name(project), extra) for extra in {"", *extras}]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        names.add(name)
        try:
            lines = requires(name) or []
        except PackageNotFoundError:  # not installed: not needed on this platform
            continue
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # unconditional requirements were taken with extra ""
            dep = canonicalize_name(req.name)
            todo += [(dep, "")] + [(dep, e) for e in req.extras]
    return names


def test_plain_install_pulls_no_web_server_or_faker() -> None:
    plain = _closure("lynkist-etl")
    assert {"dlt", "duckdb", "httpx", "pandas"} <= plain
    assert not plain & SANDBOX_ONLY, sorted(plain & SANDBOX_ONLY)
    # the extra does pull them: the check above can fail
    assert {"fastapi", "uvicorn", "faker"} <= _closure("lynkist-etl", frozenset({"sandbox"}))


def test_sandbox_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("fastapi", "uvicorn", "faker"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    assert main(["sandbox", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'lynkist-etl[sandbox]'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
