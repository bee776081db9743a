"""``lynkist push --query`` / ``--table``: a segment modelled in the warehouse, pushed like a CSV.

On DuckDB and PostgreSQL: the rows come from the warehouse through the tenant's pipeline, the
plan and outcomes are a CSV push's, and ``push_results`` records what was read and how.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from tests.plugins.postgres import postgres_dsn  # noqa: F401

SEGMENT_SQL = """
CREATE SCHEMA marts;
CREATE TABLE marts.segment (email TEXT, first_name TEXT, last_name TEXT, job_title TEXT,
                            tags TEXT, score INTEGER);
"""
QUERY = "select email, first_name, last_name, job_title, tags from marts.segment where score > 0"


def _segment_rows(sb: SandboxServer) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    """3 new contacts, 2 changed ones, 1 invalid email, 1 row the query filters out."""
    known = [c for c in sb.admin.contacts("acme") if c["email"] and not c["archived_at"]][:2]
    rows = [
        ("new.one@example.com", "Ada", "One", "CTO", '["vip"]', 3),
        ("new.two@example.com", "Bob", "Two", None, None, 2),
        ("new.three@example.com", "Cy", "Three", "CFO", "a;b", 1),
        (known[0]["email"], known[0]["first_name"], known[0]["last_name"], "Changed", None, 5),
        (known[1]["email"], known[1]["first_name"], known[1]["last_name"], "Changed", None, 5),
        ("not-an-email", "Bad", "Row", None, None, 1),
        ("filtered.out@example.com", "No", "Body", None, None, 0),
    ]
    return rows, {c["email"]: c["id"] for c in known}


def _config(tmp_path: Path, tenant: str, defaults: str) -> Path:
    path = tmp_path / "lynkist.toml"
    path.write_text(
        f'[defaults]\n{defaults}\n\n[[tenants]]\nname = "{tenant}"\napi_key_env = "ACME_KEY"\n'
    )
    return path


def _push(config: Path, tenant: str, *how: str, capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(["push", *how, "--tenant", tenant, "--config", str(config), "--json"])
    out = capsys.readouterr()
    assert code == 3, out.err  # the invalid row is rejected
    return json.loads(out.out)


def _check_server(sb: SandboxServer, known: dict[str, str]) -> None:
    live = {c["email"]: c for c in sb.admin.contacts("acme") if not c["archived_at"]}
    assert live["new.one@example.com"]["tags"] == ["vip"]
    assert live["new.three@example.com"]["tags"] == ["a", "b"]
    assert live["new.two@example.com"]["first_name"] == "Bob"
    assert "filtered.out@example.com" not in live
    for email, contact_id in known.items():
        assert live[email]["id"] == contact_id
        assert live[email]["job_title"] == "Changed"


def _query_hash() -> str:
    return "query:sha256:" + hashlib.sha256(" ".join(QUERY.split()).encode()).hexdigest()[:12]


def test_push_from_a_duckdb_query_and_table(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ACME_KEY", sb.keys["acme"]["rw"])
    sb.admin.seed("acme", 20, seed=8)
    rows, known = _segment_rows(sb)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(SEGMENT_SQL)
        con.executemany("INSERT INTO marts.segment VALUES (?, ?, ?, ?, ?, ?)", rows)
    config = _config(tmp_path, "acme", f'base_url = "{sb.base_url}"\nduckdb = "warehouse.duckdb"')

    summary = _push(config, "acme", "--query", QUERY, capsys=capsys)

    assert (summary["created"], summary["updated"], summary["rejected"]) == (3, 2, 1)
    _check_server(sb, known)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = con.execute(
            "SELECT source, mapping, match_on, outcome, count(*) FROM acme.push_results "
            "WHERE run_id = ? GROUP BY ALL",
            [summary["run_id"]],
        ).fetchall()
    assert Counter({r[3]: r[4] for r in recorded}) == {"created": 3, "updated": 2, "rejected": 1}
    assert {r[:3] for r in recorded} == {(_query_hash(), "auto", "email")}

    # the whole table: the filtered-out row is new, the rest were pushed a moment ago
    summary = _push(config, "acme", "--table", "marts.segment", capsys=capsys)
    assert (summary["created"], summary["unchanged"], summary["rejected"]) == (1, 5, 1)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sources = con.execute(
            "SELECT DISTINCT source FROM acme.push_results WHERE run_id = ?", [summary["run_id"]]
        ).fetchall()
    assert sources == [("table:marts.segment",)]


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (("--query", "select nope from marts.missing"), "--query: the warehouse refused it"),
        (("--table", "marts.missing"), "--table marts.missing: the warehouse refused it"),
        (("--table", "a.b.c"), "--table 'a.b.c': give schema.name or name"),
        (("--query", "select 1", "--table", "x"), "give the rows to push"),
        ((), "give the rows to push"),
    ],
)
def test_model_mistakes_are_exit_2(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("ACME_KEY", sb.keys["acme"]["rw"])
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(SEGMENT_SQL)
    config = _config(tmp_path, "acme", f'base_url = "{sb.base_url}"\nduckdb = "warehouse.duckdb"')
    code = main(["push", *how, "--tenant", "acme", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert sb.admin.requests() == []  # no API call before the input is known good


@pytest.mark.postgres
def test_push_from_a_postgres_query(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_dsn: str,  # noqa: F811
) -> None:
    monkeypatch.setenv("ACME_KEY", sb.keys["acme"]["rw"])
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    monkeypatch.chdir(tmp_path)  # the postgres pipelines' working directory
    sb.admin.seed("acme", 20, seed=9)
    rows, known = _segment_rows(sb)
    tenant = f"acme_{uuid.uuid4().hex[:8]}"
    marts = f"marts_{uuid.uuid4().hex[:8]}"
    with psycopg2.connect(postgres_dsn) as con, con.cursor() as cur:
        cur.execute(SEGMENT_SQL.replace("marts", marts))
        cur.executemany(f"INSERT INTO {marts}.segment VALUES (%s, %s, %s, %s, %s, %s)", rows)
    config = _config(tmp_path, tenant, f'base_url = "{sb.base_url}"\ndestination = "postgres"')

    summary = _push(config, tenant, "--query", QUERY.replace("marts", marts), capsys=capsys)

    assert (summary["created"], summary["updated"], summary["rejected"]) == (3, 2, 1)
    _check_server(sb, known)
    with psycopg2.connect(postgres_dsn) as con, con.cursor() as cur:
        cur.execute(
            f"SELECT DISTINCT mapping, match_on, source LIKE 'query:sha256:%%' "
            f"FROM {tenant}.push_results WHERE run_id = %s",
            [summary["run_id"]],
        )
        assert cur.fetchall() == [("auto", "email", True)]
        # the refresh before the push mirrored the tenant into its own dataset, and the push
        # merged the 3 contacts it created (looked up after writing) into it
        cur.execute(f"SELECT count(*) FROM {tenant}.contacts WHERE is_deleted IS NOT TRUE")
        assert cur.fetchone() == (len(sb.admin.contacts("acme")),)
