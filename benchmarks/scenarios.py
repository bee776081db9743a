"""The scenarios of ``make bench``: each returns result rows, ours beside a baseline."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import run_job
from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.server import SandboxServer
from pipelines.contact import API_BASE_PATH

LATENCY_MS = 50.0
CONCURRENCY = 8
TENANT = "acme"


@dataclass
class Sizes:
    """How big each scenario runs; ``--quick`` shrinks everything for a CI smoke run."""

    contacts: int = 20_000
    scale_contacts: int = 200_000
    push_new: int = 5_000
    push_changed: int = 3_000
    push_unchanged: int = 2_000
    naive_sample: int = 600
    rate_limit: float = 20.0
    rate_contacts: int = 20_000
    rate_push_rows: int = 400
    clean_rows: int = 100_000
    tenants: int = 50
    tenant_contacts: int = 2_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            contacts=2_000,
            scale_contacts=6_000,
            push_new=300,
            push_changed=200,
            push_unchanged=100,
            naive_sample=60,
            rate_contacts=1_000,
            rate_push_rows=100,
            clean_rows=10_000,
            tenants=5,
            tenant_contacts=500,
        )


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    metric: str
    ours: float | int | str
    baseline: float | int | str = ""
    note: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Context:
    workdir: Path
    sizes: Sizes
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


@contextmanager
def sandbox(**settings: Any) -> Iterator[SandboxServer]:
    """A sandbox in its own process, so it never shares the connector's GIL."""
    server = SandboxServer(SandboxConfig(**settings), mode="process")
    with server:
        yield server


def _key(server: SandboxServer) -> str:
    return server.keys[TENANT]["rw"]


def _requests(server: SandboxServer) -> list[dict]:
    return server.admin.requests()


def _change_contacts(server: SandboxServer, share: float, seed: int = 7) -> int:
    """PATCH a share of the tenant's contacts (latency off meanwhile); returns how many."""
    contacts = [c for c in server.admin.contacts(TENANT) if not c.get("archived_at")]
    picked = random.Random(seed).sample(contacts, max(1, int(len(contacts) * share)))
    url = server.base_url + API_BASE_PATH
    with httpx.Client(headers={"Authorization": f"Bearer {_key(server)}"}, timeout=30) as http:
        for contact in picked:
            http.patch(f"{url}/{contact['id']}", json={"job_title": "Changed by bench"})
    return len(picked)


def sandbox_capacity(ctx: Context) -> float:
    """Pages/s the sandbox serves with no added latency: the ceiling for every figure."""
    with sandbox(seed_contacts=ctx.sizes.contacts, seed=1) as server:
        pages = math.ceil(ctx.sizes.contacts / 100)
        result = run_job(
            "page_capacity",
            ctx.workdir / "capacity",
            base_url=server.base_url,
            api_key=_key(server),
            pages=pages,
            concurrency=CONCURRENCY,
        )
    capacity = float(result.output["pages_per_s"])
    ctx.raw["capacity"] = capacity
    ctx.rows.append(Row("0 sandbox", "pages/s served (no latency, 8 in flight)", round(capacity)))
    return capacity


def full_and_incremental_sync(ctx: Context) -> None:
    """Scenarios 1 and 2: full sync vs dlt rest_api; then 1% changed."""
    n = ctx.sizes.contacts
    pages = math.ceil(n / 100)
    with sandbox(seed_contacts=n, seed=1, latency_ms=LATENCY_MS) as server:
        key = _key(server)
        server.admin.clear_requests()
        ours = run_job(
            "sync",
            ctx.workdir / "sync",
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(ctx.workdir / "sync" / "lynkist_warehouse.duckdb"),
        )
        our_requests = len(_requests(server))
        server.admin.clear_requests()
        base = run_job(
            "rest_api",
            ctx.workdir / "rest_api",
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(ctx.workdir / "rest_api" / "rest_api.duckdb"),
        )
        base_requests = len(_requests(server))
        extract = run_job("extract", ctx.workdir / "extract", base_url=server.base_url, api_key=key)
        lower_bound = pages / CONCURRENCY * LATENCY_MS / 1000

        server.admin.set_settings(latency_ms=0)
        changed = _change_contacts(server, 0.01)
        server.admin.set_settings(latency_ms=LATENCY_MS)
        incremental = run_job(
            "sync",
            ctx.workdir / "sync",
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(ctx.workdir / "sync" / "lynkist_warehouse.duckdb"),
        )
    ctx.raw["rss_small"] = ours.peak_rss_mb
    speedup = base.output["run_s"] / ours.output["run_s"]
    process_speedup = base.wall_s / ours.wall_s
    s = f"1 full sync {n:,}"
    ctx.rows += [
        Row(
            s,
            "sync s, in process (ours | dlt rest_api)",
            _r(ours.output["run_s"]),
            _r(base.output["run_s"]),
            f"{speedup:.1f}x faster",
            ">= 5x",
            speedup >= 5,
        ),
        Row(
            s,
            "wall s, whole process incl. imports",
            _r(ours.wall_s),
            _r(base.wall_s),
            f"{process_speedup:.1f}x faster",
        ),
        Row(s, "requests", our_requests, base_requests),
        Row(
            s,
            "rows/s, in process",
            round(n / ours.output["run_s"]),
            round(n / base.output["run_s"]),
        ),
        Row(s, "peak RSS MB", _r(ours.peak_rss_mb), _r(base.peak_rss_mb)),
        Row(s, "rows loaded", ours.output["new"], base.output["rows"]),
        Row(
            s,
            "extract s (ours | lower bound pages/conc x latency)",
            _r(extract.output["extract_s"]),
            _r(lower_bound),
            f"{extract.output['extract_s'] / lower_bound:.2f}x bound",
            "<= 1.5x",
            extract.output["extract_s"] / lower_bound <= 1.5,
        ),
    ]
    sandbox_share = (pages / extract.output["extract_s"]) / ctx.raw["capacity"]
    if sandbox_share > 0.5:
        ctx.rows.append(
            Row(
                s,
                "sandbox-bound?",
                f"{sandbox_share:.0%} of its capacity",
                "",
                "extraction figure may be bounded by the sandbox",
            )
        )
    written = incremental.output["rows_written"]
    ctx.rows += [
        Row(
            f"2 incremental ({changed} changed)",
            "sync s, in process | whole process",
            _r(incremental.output["run_s"]),
            _r(incremental.wall_s),
        ),
        Row(
            f"2 incremental ({changed} changed)",
            "rows written",
            written,
            changed,
            "",
            "= changes",
            written == changed,
        ),
    ]


def scale_sync(ctx: Context) -> None:
    """Scenario 3: memory stays flat from 20k to 200k contacts."""
    n = ctx.sizes.scale_contacts
    with sandbox(seed_contacts=n, seed=3, latency_ms=LATENCY_MS) as server:
        result = run_job(
            "sync",
            ctx.workdir / "scale",
            base_url=server.base_url,
            api_key=_key(server),
            duckdb_path=str(ctx.workdir / "scale" / "lynkist_warehouse.duckdb"),
        )
    small = ctx.raw.get("rss_small", float("nan"))
    ratio = result.peak_rss_mb / small
    s = f"3 scale {n:,}"
    ctx.rows += [
        Row(
            s,
            "sync s, in process | whole process",
            _r(result.output["run_s"]),
            _r(result.wall_s),
            f"{round(n / result.output['run_s']):,} rows/s",
        ),
        Row(
            s,
            f"peak RSS MB (at {n:,} | at {ctx.sizes.contacts:,})",
            _r(result.peak_rss_mb),
            _r(small),
            f"{ratio:.2f}x",
            "<= 1.5x",
            ratio <= 1.5,
        ),
    ]


def _write_export(
    server: SandboxServer,
    ctx: Context,
    name: str,
    new: int,
    changed: int,
    unchanged: int,
    seed: int,
) -> Path:
    """A HubSpot-style export: ``new`` unknown rows, ``changed`` + ``unchanged`` known ones."""
    from lynkist_sandbox.exports import build_push_export

    contacts = [c for c in server.admin.contacts(TENANT) if not c.get("archived_at")]
    known = [c for c in contacts if c.get("email")]
    frame = build_push_export(known, new=new, changed=changed, unchanged=unchanged, seed=seed)
    path = ctx.workdir / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def push(ctx: Context) -> None:
    """Scenario 4: our push vs a naive one-row-at-a-time loop, same export."""
    sz = ctx.sizes
    existing = sz.push_changed + sz.push_unchanged
    with sandbox(seed_contacts=existing * 2, seed=5, latency_ms=LATENCY_MS) as server:
        key = _key(server)
        csv_path = _write_export(
            server, ctx, "push", sz.push_new, sz.push_changed, sz.push_unchanged, seed=5
        )
        workdir = ctx.workdir / "push"
        server.admin.clear_requests()
        ours = run_job(
            "push",
            workdir,
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(workdir / "lynkist_warehouse.duckdb"),
            csv_path=str(csv_path),
            results_path=str(workdir / "results.csv"),
        )
        writes = [
            r
            for r in _requests(server)
            if r["method"] in ("POST", "PATCH", "DELETE") and not r["path"].endswith("/search")
        ]
    with sandbox(seed_contacts=existing * 2, seed=5, latency_ms=LATENCY_MS) as server:
        naive = run_job(
            "naive_push",
            ctx.workdir / "naive",
            base_url=server.base_url,
            api_key=_key(server),
            csv_path=str(csv_path),
            limit=sz.naive_sample,
        )
    total = sz.push_new + existing
    per_row = naive.wall_s / max(1, naive.output["rows"])
    naive_total = per_row * total
    expected_writes = math.ceil(sz.push_new / 100) + sz.push_changed
    s = f"4 push {total:,} ({sz.push_new}/{sz.push_changed}/{sz.push_unchanged})"
    ctx.rows += [
        Row(
            s,
            "wall s (ours | naive loop)",
            _r(ours.wall_s),
            _r(naive_total),
            f"{naive_total / ours.wall_s:.0f}x faster; naive timed on {naive.output['rows']}"
            " rows, scaled linearly",
            ">= 20x",
            naive_total / ours.wall_s >= 20,
        ),
        Row(
            s,
            "write calls (ours | naive)",
            len(writes),
            total,
            f"expected ceil(new/100)+changed = {expected_writes}",
            "= expected",
            len(writes) == expected_writes,
        ),
        Row(s, "outcomes", str(ours.output["outcomes"])),
    ]


def rate_limited(ctx: Context) -> None:
    """Scenario 5: sustained share of an allowed request rate, 0 failed rows."""
    sz = ctx.sizes
    limit = sz.rate_limit
    s = f"5 rate limit {limit:g} req/s"
    with sandbox(
        seed_contacts=sz.rate_contacts, seed=9, rate_limit=limit, burst=int(limit)
    ) as server:
        key = _key(server)
        server.admin.clear_requests()
        sync = run_job(
            "sync",
            ctx.workdir / "rl_sync",
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(ctx.workdir / "rl_sync" / "lynkist_warehouse.duckdb"),
        )
        log = _requests(server)
        ok = [r for r in log if r["status"] != 429]
        ctx.rows += _rate_rows(
            s + " sync", ok, log, limit, failed=sz.rate_contacts - sync.output["new"]
        )
        changed = sz.rate_push_rows // 2
        csv_path = _write_export(
            server, ctx, "rl_push", sz.rate_push_rows - changed, changed, 0, seed=11
        )
        server.admin.clear_requests()
        pushed = run_job(
            "push",
            ctx.workdir / "rl_sync",
            base_url=server.base_url,
            api_key=key,
            duckdb_path=str(ctx.workdir / "rl_sync" / "lynkist_warehouse.duckdb"),
            csv_path=str(csv_path),
            results_path=str(ctx.workdir / "rl_sync" / "results.csv"),
        )
        log = _requests(server)
        ok = [r for r in log if r["status"] != 429]
        failed = pushed.output["outcomes"].get("failed", 0)
        ctx.rows += _rate_rows(s + " push", ok, log, limit, failed=failed)


def _rate_rows(s: str, ok: list[dict], log: list[dict], limit: float, failed: int) -> list[Row]:
    """Achieved rate measured by the server: accepted requests over the span they arrived in."""
    arrivals = sorted(datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in log)
    span = (arrivals[-1] - arrivals[0]).total_seconds() if len(arrivals) > 1 else float("nan")
    achieved = (len(ok) - 1) / span if span > 0 else float("nan")
    return [
        Row(
            s,
            "achieved req/s (of the limit)",
            _r(achieved),
            limit,
            f"{achieved / limit:.0%} of limit, over {span:.1f} s of requests",
            ">= 90%",
            achieved / limit >= 0.9,
        ),
        Row(s, "429s received", len(log) - len(ok)),
        Row(s, "rows failed", failed, "", "", "0", failed == 0),
    ]


def cleaning(ctx: Context) -> None:
    """Scenario 6: mapping + cleaning throughput."""
    result = run_job("clean", ctx.workdir / "clean", rows=ctx.sizes.clean_rows)
    ctx.rows.append(
        Row(
            f"6 clean {ctx.sizes.clean_rows:,} rows",
            "rows/s",
            round(result.output["rows_per_s"]),
            "",
            f"{result.output['clean_s']:.1f} s",
        )
    )


def _r(value: float) -> float:
    return round(value, 2)
