"""Scenario ``tenants``: many tenants from one command vs one after another.

50 tenants x 2,000 contacts at 50 ms latency (``--quick``: 5 x 500), each run from a fresh
warehouse, all tenants in one DuckDB file:

* ``lynkist sync --all`` (default budget: 32 requests in flight, 4 tenants at once);
* the same command with ``--max-concurrency 8``: one tenant at a time in one process;
* ``lynkist sync --tenant NAME`` once per tenant, one process after another (a cron line per
  tenant, what users did before ``--all``); timed on a sample of tenants, scaled linearly;
* one tenant's ``lynkist sync``: the memory reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import run_job
from benchmarks.scenarios import LATENCY_MS, Context, Row, sandbox

#: Tenants timed as one process each (then scaled to all): the loop is the slow baseline.
PROCESS_SAMPLE = 8


def _keys(n: int) -> dict[str, dict[str, str]]:
    return {f"t{i:03d}": {"rw": f"lk_bench_tenant_{i:03d}_0123456789abcdef"} for i in range(n)}


def _config(workdir: Path, base_url: str, tenants: list[str]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lynkist.toml"
    entries = "\n".join(
        f'[[tenants]]\nname = "{t}"\napi_key_env = "KEY_{t.upper()}"\n' for t in tenants
    )
    path.write_text(
        f'[defaults]\nbase_url = "{base_url}"\nduckdb = "warehouse.duckdb"\n\n{entries}'
    )
    return path


def many_tenants(ctx: Context) -> None:
    """50 tenants x 2,000 contacts: ``--all`` vs one after another; peak RSS vs one tenant."""
    n, per = ctx.sizes.tenants, ctx.sizes.tenant_contacts
    keys = _keys(n)
    env = {f"KEY_{t.upper()}": k["rw"] for t, k in keys.items()}
    names = sorted(keys)
    s = f"6 tenants {n} x {per:,}"
    with sandbox(api_keys=keys, latency_ms=LATENCY_MS) as server:
        server.admin.set_settings(latency_ms=0)
        for i, tenant in enumerate(names):
            server.admin.seed(tenant, per, seed=100 + i)
        server.admin.set_settings(latency_ms=LATENCY_MS)

        one = run_job(
            "sync",
            ctx.workdir / "tenants_one",
            base_url=server.base_url,
            api_key=keys[names[0]]["rw"],
            duckdb_path=str(ctx.workdir / "tenants_one" / "lynkist_warehouse.duckdb"),
        )
        all_ = run_job(
            "sync_tenants",
            ctx.workdir / "tenants_all",
            config=str(_config(ctx.workdir / "tenants_all", server.base_url, names)),
            env=env,
        )
        serial = run_job(
            "sync_tenants",
            ctx.workdir / "tenants_serial",
            config=str(_config(ctx.workdir / "tenants_serial", server.base_url, names)),
            env=env,
            max_concurrency=8,
        )
        sample = names[: min(PROCESS_SAMPLE, n)]
        config = _config(ctx.workdir / "tenants_processes", server.base_url, names)
        started = time.perf_counter()
        for tenant in sample:
            subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "sync", "--tenant", tenant, "--config",
                 str(config), "--quiet"],
                check=True,
                env={**os.environ, **env},
                cwd=config.parent,
            )  # fmt: skip
        per_process = (time.perf_counter() - started) / len(sample)
    loop_s = per_process * n
    assert all_.output["ok"] == n and serial.output["ok"] == n, (all_.output, serial.output)
    speedup = loop_s / all_.wall_s
    in_process = serial.wall_s / all_.wall_s
    rss_ratio = all_.peak_rss_mb / one.peak_rss_mb
    ctx.rows += [
        Row(
            s,
            "wall s: --all | a process per tenant, one after another",
            whole=_r(all_.wall_s),
            baseline=_r(loop_s),
            ratio=f"{speedup:.1f}x faster",
            target=">= 4x",
            met=speedup >= 4,
            note=f"loop timed on {len(sample)} tenants, scaled linearly",
        ),
        Row(
            s,
            "wall s: --all | one process, one tenant at a time (--max-concurrency 8)",
            whole=_r(all_.wall_s),
            baseline=_r(serial.wall_s),
            ratio=f"{in_process:.1f}x faster",
        ),
        Row(
            s,
            "peak RSS MB: --all | one tenant's sync",
            whole=_r(all_.peak_rss_mb),
            baseline=_r(one.peak_rss_mb),
            ratio=f"{rss_ratio:.2f}x",
            target="<= 1.3x",
            met=rss_ratio <= 1.3,
            note=f"one process at a time: {serial.peak_rss_mb:.0f} MB",
        ),
        Row(s, "contacts loaded by --all", whole=all_.output["new"], baseline=n * per),
    ]


def _r(value: float) -> float:
    return round(value, 2)
