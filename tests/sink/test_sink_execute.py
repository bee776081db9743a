"""Executing plans against the sandbox: lost bulk answers, per-row errors, a read-only key."""

from __future__ import annotations

from collections import Counter

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink.execute import execute_plan
from pipelines.sink.keys import MatchKey
from pipelines.sink.plan import Plan, PlannedRow
from tests.sink.conftest import assert_no_duplicates, create_contacts, live_contacts, write_calls


def _creates(n: int, start: int = 1) -> list[PlannedRow]:
    return [
        PlannedRow(
            i,
            f"row{i}@acme.test",
            "create",
            payload={"first_name": f"Row{i}", "email": f"row{i}@acme.test"},
        )
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("tenant_size", [None, 0], ids=["search", "listing-scan"])
def test_lost_bulk_answers_are_reconciled_never_resent(
    sb: SandboxServer, api_key: str, tenant_size: int | None
) -> None:
    # Every write commits and then loses its answer; /bulk ignores Idempotency-Key.
    sb.admin.set_settings(idempotent_bulk=False)
    sb.admin.set_faults(drop_after_commit=1.0)
    plan = Plan(_creates(250), MatchKey("email"))

    with LynkistClient(sb.base_url, api_key) as client:
        execution = execute_plan(client, plan, tenant_size=tenant_size)

    sb.admin.set_faults()
    contacts = live_contacts(sb)
    assert len(contacts) == 250
    assert_no_duplicates(contacts)
    bulk_posts = [w for w in write_calls(sb) if w["path"].endswith("/bulk")]
    assert len(bulk_posts) == 3  # one per batch: nothing was sent twice
    assert all(w["fault"] == "drop_after_commit" for w in bulk_posts)
    assert execution.stats.unknown_batches == 3
    assert execution.stats.reconciled_found == 250
    assert Counter(r.outcome for r in execution.results) == {"created": 250}
    ids = {c["email"]: c["id"] for c in contacts}
    assert all(r.contact_id == ids[r.match_key] for r in execution.results)
    searches = [r for r in sb.admin.requests() if r["path"].endswith("/search")]
    assert (len(searches) >= 250) if tenant_size is None else (searches == [])


def test_item_errors_and_patch_422_are_row_outcomes(sb: SandboxServer, api_key: str) -> None:
    with LynkistClient(sb.base_url, api_key) as client:
        create_contacts(client, [{"first_name": "Old", "email": "old@acme.test"}])
        (old,) = live_contacts(sb)
        rows = [
            *_creates(2),
            PlannedRow(3, "x@acme.test", "create", payload={"first_name": "", "email": "x@a.t"}),
            PlannedRow(
                4, "old@acme.test", "update", contact_id=old["id"], payload={"phone": "9" * 25}
            ),
            PlannedRow(5, None, "reject", reason="no email to match on"),
        ]
        execution = execute_plan(client, Plan(rows, MatchKey("email")))

    by_row = {r.row_number: r for r in execution.results}
    assert [by_row[i].outcome for i in range(1, 6)] == [
        "created",
        "created",
        "failed",
        "failed",
        "rejected",
    ]
    assert by_row[3].http_status == 422 and "first_name" in (by_row[3].error or "")
    assert by_row[4].http_status == 422 and "phone" in (by_row[4].error or "")
    assert {c["email"] for c in live_contacts(sb)} == {
        "old@acme.test",
        "row1@acme.test",
        "row2@acme.test",
    }


def test_read_only_key_stops_the_run(sb: SandboxServer) -> None:
    plan = Plan(_creates(150), MatchKey("email"))
    with LynkistClient(sb.base_url, sb.keys["acme"]["ro"]) as client:
        execution = execute_plan(client, plan)
    assert execution.fatal is not None and "contacts:write" in execution.fatal
    assert Counter(r.outcome for r in execution.results) == {"failed": 150}
    assert live_contacts(sb) == []
