"""Push under faults, with answers dropped after the write committed (no idempotent /bulk)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistError
from pipelines.sink import PushReport, PushSettings, run_push
from tests.chaos.figures import fault_counts, report
from tests.chaos.seeds import CLIENT_TIMEOUT, QUICK_SEEDS, faults_for, seed_params
from tests.sink.conftest import write_calls

COLUMNS = ("first_name", "last_name", "email", "company", "job_title")
OUTCOMES = {"created", "updated", "unchanged", "failed"}


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _matchable(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contacts a push can match by email: one contact per email, written as the API keeps it."""
    emails = Counter((c["email"] or "").lower() for c in contacts)
    return [
        c
        for c in contacts
        if c["email"] and c["email"] == c["email"].lower() and emails[c["email"]] == 1
    ]


class Export:
    """A Lynkist-layout export of new, changed and unchanged rows, and the expected server."""

    def __init__(
        self, contacts: list[dict[str, Any]], seed: int, *, new: int, changed: int, unchanged: int
    ) -> None:
        self.before = {c["id"]: c for c in contacts}
        usable = _matchable(contacts)
        assert len(usable) >= changed + unchanged, "not enough matchable contacts"
        self.changed = {c["id"]: f"Chaos {seed} #{i}" for i, c in enumerate(usable[:changed])}
        self.unchanged = [c["id"] for c in usable[changed : changed + unchanged]]
        rows: list[dict[str, str]] = []
        for c in usable[:changed]:
            rows.append({k: _cell(c[k]) for k in COLUMNS} | {"job_title": self.changed[c["id"]]})
        for c in usable[changed : changed + unchanged]:
            rows.append({k: _cell(c[k]) for k in COLUMNS})
        self.new = {
            f"new{i}.s{seed}@chaos.test": {
                "first_name": f"New{i}",
                "last_name": "Chaos",
                "email": f"new{i}.s{seed}@chaos.test",
                "company": "Initech",
                "job_title": f"Tester {seed}",
            }
            for i in range(new)
        }
        rows.extend(self.new.values())
        self.frame = pd.DataFrame(rows, columns=list(COLUMNS))

    def discrepancies(self, sb: SandboxServer) -> tuple[int, int, list[str]]:
        """Rows lost, contacts duplicated, and field mismatches on the server."""
        contacts = sb.admin.contacts("acme")
        live = [c for c in contacts if c["archived_at"] is None]
        problems = [f"{c['id']} archived" for c in contacts if c["archived_at"] is not None]
        by_email = Counter(c["email"] for c in live)
        lost = sum(1 for e in self.new if by_email[e] == 0)
        duplicated = sum(by_email[e] - 1 for e in self.new if by_email[e] > 1)
        for c in live:
            if c["id"] in self.before:
                want = dict(self.before[c["id"]])
                if c["id"] in self.changed:
                    want["job_title"] = self.changed[c["id"]]
                    want["updated_at"] = c["updated_at"]
                if c != want:
                    problems.append(f"{c['id']}: {c} != {want}")
            elif c["email"] in self.new:
                expected = self.new[c["email"]]
                if {k: c[k] for k in COLUMNS} != expected:
                    problems.append(f"{c['email']}: {c} != {expected}")
            else:
                problems.append(f"unexpected contact {c}")
        lost += sum(1 for i in self.before if i not in {c["id"] for c in live})
        return lost, duplicated, problems


def check_one_outcome_per_row(result: PushReport, n: int, warehouse: str | Path) -> Counter[str]:
    """One outcome per input row, in the report and in ``lynkist.push_results``."""
    frame = result.results
    assert list(frame["row_number"]) == list(range(1, n + 1)), "one outcome per input row"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = con.execute(
            "SELECT row_number, outcome FROM lynkist.push_results WHERE run_id = ? "
            "ORDER BY row_number",
            [result.run_id],
        ).fetchall()
    assert recorded == list(zip(frame["row_number"], frame["outcome"], strict=True))
    outcomes = Counter(frame["outcome"])
    assert set(outcomes) <= OUTCOMES, outcomes
    return outcomes


def push_until_done(
    frame: pd.DataFrame, settings: PushSettings, sb: SandboxServer, seed: int, runs: int = 4
) -> tuple[list[PushReport], int]:
    """Push again while rows failed (the next push picks them up); faults on for every run."""
    reports: list[PushReport] = []
    errors = 0
    for attempt in range(runs):
        sb.admin.set_faults(**faults_for(seed + 1000 * attempt, drop_after_commit=0.05))
        try:
            pushed = run_push(frame, settings)
        except LynkistError:
            errors += 1  # the refresh ran out of retries: nothing was written, run again
            continue
        reports.append(pushed)
        if not (pushed.results["outcome"] == "failed").any():
            break
    sb.admin.set_faults()
    assert reports and not (reports[-1].results["outcome"] == "failed").any(), (
        f"rows still failed after {runs} pushes"
    )
    return reports, errors


@pytest.mark.parametrize("seed", seed_params())
def test_push_under_faults_loses_and_doubles_nothing(
    sb: SandboxServer, tmp_path: Path, seed: int
) -> None:
    sb.admin.seed("acme", 200, seed=seed)
    sb.admin.set_settings(retry_after="mixed", idempotent_bulk=False)
    quick = seed in QUICK_SEEDS  # make test: fewer rows, same faults
    export = Export(
        sb.admin.contacts("acme"),
        seed,
        new=120 if quick else 220,
        changed=25 if quick else 40,
        unchanged=10 if quick else 20,
    )
    settings = PushSettings(
        base_url=sb.base_url,
        api_key=sb.keys["acme"]["rw"],
        mapping="lynkist",
        duckdb_path=tmp_path / "wh.duckdb",
        timeout=CLIENT_TIMEOUT,
        inflight_grace_s=CLIENT_TIMEOUT,
    )
    sb.admin.clear_requests()

    reports, errors = push_until_done(export.frame, settings, sb, seed)

    faults = fault_counts(sb)
    writes = write_calls(sb)
    lost, duplicated, problems = export.discrepancies(sb)
    assert (lost, duplicated) == (0, 0)
    assert not problems, "\n".join(problems[:5])
    outcomes = [
        check_one_outcome_per_row(r, len(export.frame), settings.duckdb_path) for r in reports
    ]
    # a row is created at most once over all runs; later runs find it unchanged
    created = Counter[int]()
    for r in reports:
        created.update(r.results.loc[r.results["outcome"] == "created", "row_number"])
    assert all(n == 1 for n in created.values()), "a row was created twice"
    assert sum(created.values()) <= len(export.new)
    untouched = set(export.unchanged)
    assert not [w for w in writes if w["path"].rsplit("/", 1)[-1] in untouched]
    assert sum(faults.values()) > 0, "no fault was injected: the test proves nothing"
    report(
        "push",
        seed=seed,
        faults=faults,
        rows=len(export.frame),
        runs=len(reports) + errors,
        failed_rows=sum(o["failed"] for o in outcomes),
        unknown_batches=sum(r.summary["unknown_batches"] for r in reports),
        write_calls=len(writes),
        rows_lost=lost,
        rows_duplicated=duplicated,
    )
