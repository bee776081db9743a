"""The README's "Library use" snippet runs as documented against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    text = README.read_text("utf-8")
    section = text.split("### Library use", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under Library use"
    return match.group(1)


def test_readme_library_snippet_runs(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb.admin.seed("acme", 25, seed=5)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))  # the user pipeline's state
    monkeypatch.setenv("LYNKIST_BASE_URL", sb.base_url)
    monkeypatch.setenv("LYNKIST_API_KEY", sb.keys["acme"]["rw"])
    exec(compile(_snippet(), str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "contacts_current" in out
    assert "25 contacts" in out
    assert "created" in out
    assert any(c["email"] == "ada@example.test" for c in sb.admin.contacts("acme"))
    assert (tmp_path / "crm.duckdb").is_file() and (tmp_path / "lynkist_warehouse.duckdb").is_file()
