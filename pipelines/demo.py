"""``lynkist demo``: the whole product on a throwaway local setup, in under a minute.

A sandbox with seeded contacts; a full sync; a few changes on the server and an incremental
sync; a push of the bundled HubSpot-style sample export; the report. Everything lands in one
folder, recreated on every run, and the sandbox stops before the command returns.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.exports import HUBSPOT_SAMPLE
from lynkist_sandbox.server import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink import push_dataframe
from pipelines.source.runner import SyncSettings, SyncSummary, run_sync
from transforms.cleaning import clean_contacts
from transforms.csv_io import read_export
from transforms.mapping import apply_mapping

DEMO_TENANT = "acme"
DEMO_SEED = 42
#: Sample rows that already exist in Lynkist before the push: the first half identical to the
#: export, the second half with another job title, so the push shows every kind of outcome.
SHARED_SAMPLE_ROWS = 8


@dataclass
class DemoResult:
    """Where the demo left everything, and what each step did."""

    workdir: Path
    warehouse: Path
    results_csv: Path
    report_html: Path
    charts: list[Path]
    syncs: list[SyncSummary] = field(default_factory=list)
    push_summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _share_sample_rows(client: LynkistClient, sample: Any) -> int:
    """Create the first sample contacts on the server, half of them slightly different."""
    cleaned = clean_contacts(apply_mapping(sample, "hubspot")).valid.head(SHARED_SAMPLE_ROWS)
    fields = [c for c in cleaned.columns if not c.startswith("_")]
    contacts: list[dict[str, Any]] = []
    for position, record in enumerate(cleaned[fields].to_dict("records")):
        contact = {str(k): v for k, v in record.items() if v is not None and v == v and v != {}}
        if position >= SHARED_SAMPLE_ROWS // 2:
            contact["job_title"] = "Previous role"
        contacts.append(contact)
    return client.bulk_create(list(contacts)).created


def _change_server(client: LynkistClient) -> dict[str, int]:
    """What a day of CRM activity looks like: a few updates, archives and new contacts."""
    newest = client.list_contacts(page=1, limit=10).data
    for contact in newest[:3]:
        client.update_contact(contact["id"], {"status": "customer", "tags": ["vip"]})
    for contact in newest[3:5]:
        client.delete_contact(contact["id"])
    created = client.bulk_create(
        [
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@analytical.test"},
            {"first_name": "Alan", "last_name": "Turing", "phone": "+441632960961"},
        ]
    ).created
    return {"updated": 3, "archived": 2, "created": created}


def run_demo(
    workdir: str | Path = "lynkist-demo",
    *,
    contacts: int = 3000,
    console: Console | None = None,
) -> DemoResult:
    """Run the end-to-end demo.

    Args:
        workdir: Folder for the warehouse, results and report (wiped first).
        contacts: Contacts seeded into the sandbox tenant.
        console: Where to print; a new stdout console by default.

    Returns:
        The paths and the figures of every step.
    """
    from pipelines.cli.push import render_report as render_push
    from pipelines.cli.sync import summary_table as sync_table
    from pipelines.report import build_report

    console = console or Console()
    started = time.monotonic()
    root = _fresh_dir(Path(workdir).resolve())
    warehouse = root / "lynkist_warehouse.duckdb"
    results_csv = root / "push-results.csv"
    sample = read_export(HUBSPOT_SAMPLE)
    syncs: list[SyncSummary] = []

    config = SandboxConfig(seed_contacts=contacts, seed=DEMO_SEED)
    with SandboxServer(config) as sandbox:
        key = sandbox.keys[DEMO_TENANT]["rw"]
        console.rule("[bold]1. Sandbox")
        console.print(
            f"Lynkist-compatible API at {sandbox.base_url} with {contacts:,} seeded contacts "
            f"(tenant {DEMO_TENANT})",
            highlight=False,
        )
        settings = SyncSettings(base_url=sandbox.base_url, api_key=key, duckdb_path=warehouse)
        with LynkistClient(sandbox.base_url, key) as client:
            shared = _share_sample_rows(client, sample)
            console.print(
                f"added {shared} contacts of the sample export on top of the {contacts:,} "
                f"seeded ({contacts + shared:,} in all; {shared - shared // 2} as in the export, "
                f"{shared // 2} with an older job title), so the push in step 4 finds contacts "
                "to leave unchanged and to update",
                highlight=False,
            )

            console.rule("[bold]2. Full sync")
            syncs.append(run_sync(settings))
            console.print(sync_table(syncs[-1]))

            console.rule("[bold]3. Changes on the server, then an incremental sync")
            changes = _change_server(client)
            console.print(
                f"server: {changes['updated']} contacts updated, {changes['archived']} "
                f"archived, {changes['created']} created",
                highlight=False,
            )
        syncs.append(run_sync(settings))
        console.print(sync_table(syncs[-1]))

        console.rule("[bold]4. Push of a HubSpot export (reverse ETL)")
        console.print(f"export: {HUBSPOT_SAMPLE} ({len(sample)} rows)", highlight=False)
        report = push_dataframe(
            sample,
            base_url=sandbox.base_url,
            api_key=key,
            mapping="hubspot",
            duckdb_path=warehouse,
            results_path=results_csv,
        )
        render_push(console, report)

    console.rule("[bold]5. Report")
    built = build_report(warehouse, root / "report")
    console.print(
        f"wrote {built.html_path} and {len(built.png_paths)} charts "
        f"({', '.join(Path(p).name for p in built.png_paths)})",
        highlight=False,
    )
    result = DemoResult(
        workdir=root,
        warehouse=warehouse,
        results_csv=results_csv,
        report_html=Path(built.html_path),
        charts=[Path(p) for p in built.png_paths],
        syncs=syncs,
        push_summary=report.summary,
        duration_s=time.monotonic() - started,
    )
    _print_locations(console, result)
    return result


def _print_locations(console: Console, result: DemoResult) -> None:
    console.rule("[bold]Where everything is")
    console.print(f"warehouse     {result.warehouse}  (dataset lynkist)", highlight=False)
    console.print(f"push results  {result.results_csv}", highlight=False)
    console.print(f"report        {result.report_html}", highlight=False)
    for chart in result.charts:
        console.print(f"  chart       {chart}", highlight=False)
    console.print(
        f"Explore: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{result.warehouse}')"
        ".sql('select * from lynkist.contacts_current limit 5'))\"",
        highlight=False,
    )
    console.print(f"demo finished in {result.duration_s:.1f} s", highlight=False)
