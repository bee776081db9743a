"""``make bench``: run every scenario and print ours beside the baseline, from one run."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import listen, scenarios, tenants
from benchmarks.scenarios import Context, Row, Sizes

SCENARIOS = {
    # the scenarios with goals first: a run cut short still has them
    "sync": scenarios.full_and_incremental_sync,
    "push": scenarios.push,
    "scale": scenarios.scale_sync,
    "big_field": scenarios.big_field,
    "rate": scenarios.rate_limited,
    "clean": scenarios.cleaning,
    "listen": listen.webhooks,
    "tenants": tenants.many_tenants,
}


COLUMNS = (
    "scenario",
    "metric",
    "whole process",
    "in-process",
    "baseline",
    "ratio",
    "target",
    "met",
    "note",
)


def _table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        table.add_row(
            row.scenario,
            row.metric,
            str(row.whole),
            str(row.in_process),
            str(row.baseline),
            row.ratio,
            row.target,
            met,
            row.note,
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run for CI")
    parser.add_argument(
        "--only",
        choices=sorted(SCENARIOS),
        action="append",
        help="run only these scenarios (repeatable)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results/bench.json"),
        help="where to write the results as JSON",
    )
    args = parser.parse_args(argv)

    sizes = Sizes.quick() if args.quick else Sizes()
    console = Console(width=200)  # the table is wide; wrapping beats truncating figures
    title = (
        f"lynkist-etl benchmarks ({'quick' if args.quick else 'full'}): whole process = "
        "the real command or job timed from outside, interpreter start included"
    )
    started = time.perf_counter()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lynkist-bench-") as tmp:
        ctx = Context(workdir=Path(tmp), sizes=sizes)
        scenarios.sandbox_capacity(ctx)
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            console.print(f"[bold]running[/] {name} … ({time.perf_counter() - started:.0f} s)")
            done = len(ctx.rows)
            scenario(ctx)
            console.print(_table(ctx.rows[done:], name))
            # written after every scenario: a run cut short keeps what it measured
            args.json.write_text(json.dumps([asdict(r) for r in ctx.rows], indent=2))
    console.print(_table(ctx.rows, title))
    console.print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
