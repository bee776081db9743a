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

from benchmarks import scenarios
from benchmarks.scenarios import Context, Sizes

SCENARIOS = {
    "sync": scenarios.full_and_incremental_sync,
    "scale": scenarios.scale_sync,
    "push": scenarios.push,
    "rate": scenarios.rate_limited,
    "clean": scenarios.cleaning,
    "big_field": scenarios.big_field,
}


COLUMNS = (
    "scenario",
    "metric",
    "whole s",
    "in-process",
    "baseline",
    "ratio",
    "target",
    "met",
    "note",
)


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
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lynkist-bench-") as tmp:
        ctx = Context(workdir=Path(tmp), sizes=sizes)
        scenarios.sandbox_capacity(ctx)
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            console.print(f"[bold]running[/] {name} …")
            scenario(ctx)
    table = Table(
        title=f"lynkist-etl benchmarks ({'quick' if args.quick else 'full'}): whole process = "
        "the real command or job timed from outside, interpreter start included"
    )
    for column in COLUMNS:
        table.add_column(column)
    for row in ctx.rows:
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
    console.print(table)
    console.print(f"total {time.perf_counter() - started:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in ctx.rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
