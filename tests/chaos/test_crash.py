"""kill -9 ``lynkist sync`` and ``lynkist push`` at random points; the next run completes.

Each round changes the server (sync) or pushes a new export (push), starts the command as a
real process (:class:`tests.sync.test_process.Driver`: imports first, then runs on "go"), kills
it after a random delay, sometimes kills a second run of the same work too, then completes the
work in-process and checks the final state exactly. The sandbox adds latency so that every run
lasts long enough to be killed anywhere from the first request to the results' load.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink import PushSettings, run_push
from pipelines.sink.cost import create_way
from pipelines.sink.push import inflight_journal_path
from pipelines.source.runner import run_sync
from tests.chaos.figures import report
from tests.chaos.test_scan_race import live_marked_deleted
from tests.sink.conftest import create_contacts, live_contacts, write_calls
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings
from tests.sync.test_process import Driver, _clean_env, _normalized_package

#: (kills, seed): a few kills for make test, at least ten for make chaos.
KILL_PARAMS = [
    pytest.param(2, 1, id="kills2"),
    pytest.param(12, 101, id="kills12", marks=pytest.mark.chaos),
]


class Killer:
    """Starts victims (the next one importing while the current one runs) and kills them."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        rng: random.Random,
        delays: tuple[float, float],
    ) -> None:
        self.args, self.cwd, self.env, self.rng = args, cwd, env, rng
        self.min_delay, self.max_delay = delays
        self.kills = 0
        self.finished_first = 0
        self.delays: list[float] = []
        self._next = self._spawn()

    def _spawn(self) -> Driver:
        return Driver(self.args, cwd=self.cwd, env=self.env)

    def run_and_kill(self, after: Callable[[], bool] | None = None) -> bool:
        """Start a victim, kill it after a random delay; False if it finished first.

        Args:
            after: When given, the delay starts once this holds (polled): e.g. "a load
                package is on disk", for kill points inside a phase too short to hit by chance.
        """
        victim, self._next = self._next, self._spawn()
        delay = self.rng.uniform(self.min_delay, self.max_delay)
        victim.go()
        started = time.monotonic()
        if after is not None:
            delay = self.rng.uniform(0.0, 0.15)
            while not after() and victim.proc.poll() is None:
                time.sleep(0.005)
        time.sleep(delay)
        if victim.proc.poll() is None:
            victim.proc.send_signal(signal.SIGKILL)
        code, _, err = victim.finish()
        if code == -signal.SIGKILL:
            self.kills += 1
            self.delays.append(delay)
            return True
        assert code in (0, 3), err  # it finished before the kill: a run, not a kill point
        self.finished_first += 1
        # kill sooner next time, within the time a whole run takes
        self.max_delay = max(self.min_delay, 0.8 * (time.monotonic() - started))
        return False

    def close(self) -> None:
        self._next.proc.kill()
        self._next.finish()

    def spread(self) -> str:
        return f"{min(self.delays):.2f}-{max(self.delays):.2f}s" if self.delays else "-"


def _change(sb: SandboxServer, rng: random.Random, tag: str) -> None:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    rng.shuffle(live)
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live[:15]:
            client.update_contact(contact["id"], {"job_title": tag})
        for contact in live[15:19]:
            client.delete_contact(contact["id"])
        client.bulk_create([{"first_name": f"{tag}-{i}"} for i in range(10)])


@pytest.mark.parametrize(("kills", "seed"), KILL_PARAMS)
def test_kill_9_sync_at_random_points(
    sb: SandboxServer, tmp_path: Path, kills: int, seed: int
) -> None:
    sb.admin.seed("acme", 800, seed=seed)
    rng = random.Random(seed)
    db = tmp_path / "w.duckdb"
    settings = sync_settings(sb, db)
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    args = ["sync", "--quiet", "--duckdb", str(db), "--base-url", sb.base_url]
    # a victim's run lasts ~3 s here: scan, confirm deletes, normalize, load
    killer = Killer(args, cwd=tmp_path, env=env, rng=rng, delays=(0.05, 3.5))
    rounds = completions = 0
    phases: Counter[str] = Counter()

    def kill() -> bool:
        # a third of the kill points inside the short load phase, the rest anywhere
        at_load = rng.random() < 1 / 3
        killed = killer.run_and_kill((lambda: _normalized_package(settings)) if at_load else None)
        if killed:  # a package left between normalize and load: killed while loading
            phases["kills_while_loading" if _normalized_package(settings) else "kills_earlier"] += 1
        return killed

    try:
        while killer.kills < kills:
            rounds += 1
            assert rounds <= 3 * kills, "too many victims finished before they were killed"
            _change(sb, rng, f"round{rounds}")
            sb.admin.set_settings(latency_ms=rng.choice([100, 200, 300]))
            if not kill():
                continue
            if rng.random() < 0.3 and killer.kills < kills:
                kill()  # killed twice in a row before anything completes the work
            sb.admin.set_settings(latency_ms=0)
            run_sync(settings)
            completions += 1
            assert live_marked_deleted(db, sb) == []
            assert_warehouse_matches_server(db, sb)
    finally:
        killer.close()
        sb.admin.set_settings(latency_ms=0)
    # and the run after the last completion has nothing left to do
    assert run_sync(settings).rows_written == 0
    report(
        "crash-sync",
        seed=seed,
        faults=Counter(),
        kills=killer.kills,
        finished_before_kill=killer.finished_first,
        completions=completions,
        **phases,
        kill_delays=killer.spread(),
    )


class PushModel:
    """The contacts the server must hold after each completed push, by email."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}

    def export(self, rng: random.Random, tag: str, *, new: int, changed: int) -> pd.DataFrame:
        """New rows and changed existing ones, shuffled; the model takes the result."""
        rows = [
            {
                "first_name": f"N{i}",
                "last_name": tag,
                "email": f"{tag}.{i}@crash.test",
                "company": "Globex",
                "job_title": "New",
            }
            for i in range(new)
        ]
        for email in rng.sample(sorted(self.contacts), min(changed, len(self.contacts))):
            rows.append({**self.contacts[email], "job_title": tag})
        rng.shuffle(rows)
        for row in rows:
            self.contacts[row["email"]] = dict(row)
        return pd.DataFrame(rows)

    def check(self, sb: SandboxServer) -> tuple[int, int]:
        """Rows lost and contacts duplicated; then every field of every contact (of the model's:
        contacts seeded beside them are not its business)."""
        live = [c for c in live_contacts(sb) if str(c["email"] or "").endswith("@crash.test")]
        emails = Counter(c["email"] for c in live)
        lost = sum(1 for e in self.contacts if emails[e] == 0)
        duplicated = sum(n - 1 for n in emails.values() if n > 1)
        assert (lost, duplicated) == (0, 0)
        assert len(live) == len(self.contacts)
        for c in live:
            assert {k: c[k] for k in self.contacts[c["email"]]} == self.contacts[c["email"]]
        return lost, duplicated


@pytest.mark.parametrize(("kills", "seed"), KILL_PARAMS)
def test_kill_9_push_at_random_points(
    sb: SandboxServer, tmp_path: Path, kills: int, seed: int
) -> None:
    rng = random.Random(seed)
    model = PushModel()
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        create_contacts(
            client,
            [
                {str(k): v for k, v in row.items()}
                for row in model.export(rng, "stored", new=150, changed=0).to_dict("records")
            ],
        )
    db = tmp_path / "wh.duckdb"
    export = tmp_path / "export.csv"
    settings = PushSettings(
        base_url=sb.base_url,
        api_key=sb.keys["acme"]["rw"],
        mapping="lynkist",
        duckdb_path=db,
        inflight_grace_s=1.0,  # longer than any call the killed run may have left in flight
    )
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    args = [
        "push",
        str(export),
        "--quiet",
        "--mapping",
        "lynkist",
        "--max-concurrency",
        "2",
        "--duckdb",
        str(db),
        "--base-url",
        sb.base_url,
    ]
    # a victim's run lasts ~7 s here: refresh ~2.5 s, writes until ~4.5 s, refresh, results
    killer = Killer(args, cwd=tmp_path, env=env, rng=rng, delays=(1.0, 7.0))
    rounds = completions = resumed_unchanged = kills_after_writes = 0
    try:
        while killer.kills < kills:
            rounds += 1
            assert rounds <= 3 * kills, "too many victims finished before they were killed"
            frame = model.export(rng, f"r{rounds}", new=rng.randint(150, 350), changed=40)
            frame.to_csv(export, index=False)
            sb.admin.set_settings(latency_ms=rng.choice([60, 120, 200]))
            sb.admin.clear_requests()
            if not killer.run_and_kill():
                model.check(sb)  # the victim finished: it must have done it all
                continue
            if rng.random() < 0.3 and killer.kills < kills:
                killer.run_and_kill()  # the same export killed twice before it completes
            if write_calls(sb):
                kills_after_writes += 1
            sb.admin.set_settings(latency_ms=0)
            done = run_push(frame, settings)
            completions += 1
            outcomes = Counter(done.results["outcome"])
            assert list(done.results["row_number"]) == list(range(1, len(frame) + 1))
            assert set(outcomes) <= {"created", "updated", "unchanged"}, outcomes
            resumed_unchanged += outcomes["unchanged"]
            model.check(sb)
    finally:
        killer.close()
        sb.admin.set_settings(latency_ms=0)
    report(
        "crash-push",
        seed=seed,
        faults=Counter(),
        kills=killer.kills,
        finished_before_kill=killer.finished_first,
        completions=completions,
        rounds_killed_after_writes=kills_after_writes,
        rows_done_by_killed_runs=resumed_unchanged,
        contacts=len(model.contacts),
        rows_lost=0,
        rows_duplicated=0,
        kill_delays=killer.spread(),
    )


#: (interruptions, seed, way): a quick pair for make test, at least ten for make chaos; bulk
#: creates (many new rows into a small tenant) and single keyed creates (a few new rows into a
#: tenant of 2,000 more contacts: fewer requests than a bulk call plus a search per row).
INTERRUPT_PARAMS = [
    pytest.param(2, 7, "bulk", id="interrupts2-bulk"),
    pytest.param(2, 9, "single", id="interrupts2-single"),
    pytest.param(12, 707, "bulk", id="interrupts12-bulk", marks=pytest.mark.chaos),
    pytest.param(12, 909, "single", id="interrupts12-single", marks=pytest.mark.chaos),
]
#: Contacts seeded beside the model's so that a few new rows go as single creates.
SINGLES_TENANT = 2_000
#: How the victim is stopped: Ctrl-C, Ctrl-C twice, Ctrl-C then SIGKILL (as supervisors do),
#: SIGTERM.
STYLES = ("int", "int-int", "int-kill", "term")


def _interrupt(proc: Any, style: str) -> None:
    proc.send_signal(signal.SIGTERM if style == "term" else signal.SIGINT)
    if style in ("int-int", "int-kill"):
        time.sleep(0.15)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT if style == "int-int" else signal.SIGKILL)


@pytest.mark.parametrize(("points", "seed", "way"), INTERRUPT_PARAMS)
def test_push_interrupted_while_writes_commit_late_never_loses_or_duplicates(
    sb: SandboxServer, tmp_path: Path, points: int, seed: int, way: str
) -> None:
    """SIGINT / SIGINT twice / SIGINT+SIGKILL / SIGTERM against ``commit_delay_ms``.

    Every write of the victim commits seconds after it was sent, whether or not the victim is
    still there; each victim is interrupted either while its creates (bulk calls, or keyed
    single creates) wait on the server or at a random moment of its run, and the push is
    completed at once by the next run.
    """
    rng = random.Random(seed)
    model = PushModel()
    if way == "single":
        sb.admin.seed("acme", SINGLES_TENANT, seed=seed)
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        create_contacts(
            client,
            [
                {str(k): v for k, v in row.items()}
                for row in model.export(rng, "stored", new=100, changed=0).to_dict("records")
            ],
        )
    db = tmp_path / "wh.duckdb"
    export = tmp_path / "export.csv"
    settings = PushSettings(
        base_url=sb.base_url,
        api_key=sb.keys["acme"]["rw"],
        mapping="lynkist",
        duckdb_path=db,
        inflight_grace_s=15.0,  # far longer than any commit delay below
    )
    journal = inflight_journal_path(settings)
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    args = ["push", str(export), "--quiet", "--mapping", "lynkist", "--max-concurrency", "2"]
    args += ["--duckdb", str(db), "--base-url", sb.base_url]
    styles: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    settled_rows = found_late = with_calls_in_flight = resent = 0
    victim = Driver(args, cwd=tmp_path, env=env)
    try:
        for point in range(points):
            new = rng.randint(120, 260) if way == "bulk" else rng.randint(4, 18)
            frame = model.export(rng, f"i{point}", new=new, changed=20)
            frame.to_csv(export, index=False)
            delay_ms = rng.choice([2000, 3000, 4000])
            sb.admin.set_faults(commit_delay_ms=delay_ms)
            style = STYLES[point % len(STYLES)]
            styles[style] += 1
            victim.go()
            if rng.random() < 0.75:  # while bulk calls wait on the server
                deadline = time.monotonic() + 60
                while not journal.exists() and victim.proc.poll() is None:
                    assert time.monotonic() < deadline, "the victim never sent a create"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, delay_ms / 1000 / 2))
            else:  # anywhere from the refresh on
                time.sleep(rng.uniform(0.5, 4.0))
            in_flight = journal.exists()
            if victim.proc.poll() is None:
                _interrupt(victim.proc, style)
            code, _, err = victim.finish()
            codes[str(code)] += 1
            assert code in (0, 3, 130, 143, -signal.SIGKILL), err
            assert "Traceback" not in err, err
            with_calls_in_flight += int(in_flight and code != 0)
            victim = Driver(args, cwd=tmp_path, env=env)  # the next one imports meanwhile
            sb.admin.set_faults()
            live = sum(1 for c in sb.admin.contacts("acme") if not c.get("archived_at"))
            done = run_push(frame, settings)
            outcomes = Counter(done.results["outcome"])
            assert set(outcomes) <= {"created", "updated", "unchanged"}, outcomes
            # the finishing run creates what the interrupted one left, by the cost rule: a
            # bulk scenario's remainder can be few enough rows for single creates
            assert done.summary["create_way"] == create_way(outcomes["created"], live)
            resent += done.summary.get("inflight_resent", 0)
            settled_rows += done.summary["inflight_settled_rows"]
            found_late += done.summary["inflight_found"]
            assert not journal.exists()
            model.check(sb)
    finally:
        victim.proc.kill()
        victim.finish()
        sb.admin.set_faults()
    report(
        f"interrupt-push-{way}",
        seed=seed,
        faults=Counter({"commit_delay": points}),
        interruptions=points,
        **{f"style_{k}": v for k, v in sorted(styles.items())},
        **{f"exit_{k}": v for k, v in sorted(codes.items())},
        with_calls_in_flight=with_calls_in_flight,
        rows_of_calls_settled_by_next_run=settled_rows,
        rows_found_committed_late=found_late,
        rows_resent_with_their_key=resent,
        contacts=len(model.contacts),
        rows_lost=0,
        rows_duplicated=0,
    )
