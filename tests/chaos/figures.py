"""Figures of the chaos suites: every test adds what it did, the session prints the totals.

Each chaos test prints a one-line summary (``pytest -s`` shows it) and records the same numbers
in :data:`FIGURES`; the terminal summary (``tests/conftest.py``) adds them up (seeds, faults
injected by kind, kills, rows lost or duplicated) so the closing note can quote one run. Under
pytest-xdist each worker hands its figures to the controller, which prints the sum.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lynkist_sandbox import SandboxServer


@dataclass
class Figures:
    """Counters summed over the session's chaos tests."""

    tests: Counter[str] = field(default_factory=Counter)
    seeds: set[tuple[str, int]] = field(default_factory=set)
    faults: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, suite: str, *, seed: int | None = None, **counts: int) -> None:
        self.tests[suite] += 1
        if seed is not None:
            self.seeds.add((suite, seed))
        for name, value in counts.items():
            self.counts[f"{suite}.{name}"] += value

    def to_json(self) -> dict[str, Any]:
        """The figures as plain JSON types (how an xdist worker hands them over)."""
        return {
            "tests": dict(self.tests),
            "seeds": sorted(self.seeds),
            "faults": dict(self.faults),
            "counts": dict(self.counts),
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add figures from :meth:`to_json` of another process."""
        self.tests.update(data["tests"])
        self.seeds.update((suite, seed) for suite, seed in data["seeds"])
        self.faults.update(data["faults"])
        self.counts.update(data["counts"])

    def lines(self) -> list[str]:
        out = [
            "tests: " + ", ".join(f"{k}={v}" for k, v in sorted(self.tests.items())),
            f"seeds run: {len(self.seeds)} ("
            + ", ".join(
                f"{s}={sum(1 for x in self.seeds if x[0] == s)}" for s in sorted(self.tests)
            )
            + ")",
            "faults injected: "
            + (", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())) or "none"),
        ]
        out.extend(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        for what in ("rows_lost", "rows_duplicated", "interruptions", "kills"):
            total = sum(v for k, v in self.counts.items() if k.endswith(f".{what}"))
            if any(k.endswith(f".{what}") for k in self.counts):
                out.append(f"all suites {what}: {total}")
        return out


FIGURES = Figures()


def fault_counts(sb: SandboxServer) -> Counter[str]:
    """Faults the sandbox injected since its log was last cleared, by kind."""
    return Counter(r["fault"] for r in sb.admin.requests() if r["fault"])


def report(suite: str, *, seed: int | None, faults: Counter[str], **counts: Any) -> None:
    """Print one test's summary line and add it to the session's figures."""
    FIGURES.faults.update(faults)
    FIGURES.add(suite, seed=seed, **{k: v for k, v in counts.items() if isinstance(v, int)})
    parts = [f"seed={seed}"] if seed is not None else []
    parts.append("faults=" + (",".join(f"{k}:{v}" for k, v in sorted(faults.items())) or "0"))
    parts.extend(f"{k}={v}" for k, v in counts.items())
    print(f"\n[chaos {suite}] " + " ".join(parts))
