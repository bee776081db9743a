"""Seeds of the chaos suites: a reduced set for ``make test``, the full set for ``make chaos``."""

from __future__ import annotations

import pytest
from _pytest.mark import ParameterSet

#: Run by ``make test`` (unmarked): fast enough for every commit.
QUICK_SEEDS = (1, 2)
#: Run by ``make chaos`` (marked): at least 20 seeds, none of them the quick ones.
CHAOS_SEEDS = tuple(range(101, 121))


def seed_params() -> list[ParameterSet]:
    """The quick seeds unmarked, the chaos seeds marked ``chaos``."""
    return [pytest.param(s, id=f"seed{s}") for s in QUICK_SEEDS] + [
        pytest.param(s, id=f"seed{s}", marks=pytest.mark.chaos) for s in CHAOS_SEEDS
    ]


#: Faults of issue 7 for reads and writes alike.
FAULTS = {"error_5xx": 0.10, "error_429": 0.10, "drop": 0.02, "slow": 0.05, "slow_ms": 1500.0}
#: The client's timeout in the chaos runs (seconds).
CLIENT_TIMEOUT = 2.0


def faults_for(seed: int, **extra: float) -> dict[str, float]:
    """:data:`FAULTS` seeded, with slow answers near the timeout: just under it for even seeds,
    just over it for odd ones (reads time out and are retried; a write's answer is lost)."""
    slow_ms = 1500.0 if seed % 2 == 0 else 2500.0
    return {**FAULTS, "slow_ms": slow_ms, **extra, "seed": seed}
