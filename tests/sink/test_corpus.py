"""Realistic CRM exports (``tests/corpus``) through ``lynkist push``, dry run and real push.

Each ``<export>.csv`` was written from the CRM's documented export columns (HubSpot contacts
and leads, Salesforce Data Loader and report exports, Pipedrive people, plain spreadsheets,
Excel-saved files with a BOM and ``;``) and has ``<export>.expected.json``: per run (its extra
command-line arguments) where every column goes and the planned action of every row — the
contact to create, or the exact rejection reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from tests.sink.conftest import live_contacts
from transforms.csv_io import read_export

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.csv"))


def _expected(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / name).with_suffix(".expected.json").read_text("utf-8"))


RUNS = [(name, i) for name in FILES for i in range(len(_expected(name)["runs"]))]


def _connection(sb: SandboxServer, key: str, tmp_path: Path) -> list[str]:
    warehouse = str(tmp_path / "wh.duckdb")
    return ["--base-url", sb.base_url, "--api-key", key, "--duckdb", warehouse]


def test_the_corpus_covers_what_the_issue_asks_for() -> None:
    assert {"hubspot", "salesforce", "pipedrive", "spreadsheet"} <= {n.split("_")[0] for n in FILES}
    raw = {name: (CORPUS / name).read_bytes() for name in FILES}
    assert any(
        data.startswith(b"\xef\xbb\xbf") and b";" in data.split(b"\n")[0] for data in raw.values()
    )
    regions: set[str] = set()
    with_country = without_country = 0
    for name in FILES:
        for run in _expected(name)["runs"]:
            has_country = "custom_fields.country" in run["columns"]["mapped"].values()
            for row in run["rows"]:
                phone = row.get("contact", {}).get("phone")
                if phone and phone.startswith("+"):
                    regions.add(phonenumbers.region_code_for_number(phonenumbers.parse(phone)))
                    with_country += has_country
                    without_country += not has_country
    assert len(regions) >= 8, regions
    assert with_country and without_country


@pytest.mark.parametrize(("name", "run"), RUNS)
def test_every_column_is_accounted_for_and_no_phone_is_invalid(name: str, run: int) -> None:
    spec = _expected(name)["runs"][run]
    header = list(read_export(CORPUS / name).columns)
    mapped, ignored = spec["columns"]["mapped"], spec["columns"]["ignored"]
    assert sorted([*mapped, *ignored]) == sorted(header)
    for row in spec["rows"]:
        phone = row.get("contact", {}).get("phone")
        if phone and "--keep-invalid-phones" not in spec["args"]:
            assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), (row, phone)


@pytest.mark.parametrize(("name", "run"), RUNS)
def test_dry_run_shows_the_expected_columns_and_plan(
    name: str,
    run: int,
    sb: SandboxServer,
    api_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = _expected(name)["runs"][run]
    plan_csv = tmp_path / "plan.csv"
    argv = ["push", str(CORPUS / name), "--dry-run", "--json"]
    argv += ["--results", str(plan_csv), *spec["args"], *_connection(sb, api_key, tmp_path)]
    code = main(argv)
    rejects = any(row["action"] == "reject" for row in spec["rows"])
    assert code == (3 if rejects else 0)
    summary = json.loads(capsys.readouterr().out)
    assert summary["columns"] == spec["columns"]
    with plan_csv.open(newline="", encoding="utf-8") as handle:
        planned = [
            (int(r["row_number"]), r["action"], r["match_key"] or None, r["reason"] or None)
            for r in csv.DictReader(handle)
        ]
    assert planned == [
        (row["row"], row["action"], row["match_key"], row.get("reason")) for row in spec["rows"]
    ]


@pytest.mark.parametrize("name", FILES)
def test_push_creates_exactly_the_planned_contacts(
    name: str, sb: SandboxServer, api_key: str, tmp_path: Path
) -> None:
    spec = _expected(name)["runs"][-1]
    argv = ["push", str(CORPUS / name), "--quiet", *spec["args"]]
    code = main([*argv, *_connection(sb, api_key, tmp_path)])
    creates = [row["contact"] for row in spec["rows"] if row["action"] == "create"]
    assert code == (0 if len(creates) == len(spec["rows"]) else 3)
    stored = {c["email"]: c for c in live_contacts(sb)}
    assert sorted(stored) == sorted(c["email"] for c in creates)
    for contact in creates:
        on_server = stored[contact["email"]]
        assert {k: on_server[k] for k in contact} == contact
        for field in set(on_server) - set(contact) - {"id", "created_at", "updated_at"}:
            assert on_server[field] in (None, [], {}), (field, on_server[field])
