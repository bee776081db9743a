"""``lynkist listen`` with the sandbox delivering: restart with a spool, kill -9, sync alongside."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.contact import API_BASE_PATH
from tests.listen.helpers import (
    Listener,
    delivering_sandbox,
    free_port,
    query,
    wait_applied,
)
from tests.sync.helpers import assert_warehouse_matches_server
from tests.waiting import wait_until


def _api(sb: SandboxServer) -> httpx.Client:
    return httpx.Client(
        base_url=sb.base_url + API_BASE_PATH,
        headers={"Authorization": f"Bearer {sb.keys['acme']['rw']}"},
        timeout=30,
        trust_env=False,
    )


def _delivered_ids(sb: SandboxServer) -> list[str]:
    assert sb.state is not None
    assert sb.state.webhooks.flush(timeout=180), "the sandbox still has deliveries pending"
    log = sb.admin.webhook_deliveries()
    failed = [d for d in log if not d["delivered"]]
    assert not failed, f"{len(failed)} deliveries given up, e.g. {failed[:2]}"
    return [d["id"] for d in log]


def _assert_each_event_once(db: Path, delivered: list[str]) -> None:
    rows = query(db, "SELECT event_id FROM contact_events")
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored)), "an event was applied twice"
    missing = set(delivered) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"


def test_restart_replays_the_spool_after_kill_9(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "w.duckdb"
    with delivering_sandbox(port) as sb, _api(sb) as api:
        # a listener that never flushes on its own: everything it acknowledges stays spooled
        first = Listener(sb, db, port, "--flush-interval", "3600", "--batch-events", "100000")
        ids = [api.post("", json={"first_name": f"c{i}"}).json()["id"] for i in range(4)]
        api.patch(f"/{ids[0]}", json={"first_name": "changed"})
        api.delete(f"/{ids[1]}")
        sb.admin.add_note(ids[2], "call back on Monday", author="ops")
        sb.admin.add_communication(ids[3], channel="call", direction="inbound", subject="hi")
        delivered = _delivered_ids(sb)
        assert len(delivered) == 8
        assert first.health()["queue_depth"] == 8
        first.kill()
        assert not db.exists() or query(db, "SELECT COUNT(*) FROM contact_events") == [(0,)]
        second = Listener(sb, db, port)
        wait_applied(second, 8)
        assert second.stop() == 0
        _assert_each_event_once(db, delivered)
        assert_warehouse_matches_server(db, sb)
        notes = query(db, "SELECT contact_id, body, author FROM contact_notes")
        assert notes == [(ids[2], "call back on Monday", "ops")]
        calls = query(db, "SELECT contact_id, channel, direction FROM contact_communications")
        assert calls == [(ids[3], "call", "inbound")]


def _sync(sb: SandboxServer, db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "LYNKIST_API_KEY": sb.keys["acme"]["rw"], "LYNKIST_BASE_URL": sb.base_url}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", "--duckdb", str(db), "--quiet"],
        env=env,
        cwd=db.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_listener_waits_for_a_running_sync_and_both_succeed(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "w.duckdb"
    with delivering_sandbox(port, seed_contacts=3000) as sb, _api(sb) as api:
        listener = Listener(sb, db, port)
        sb.admin.set_settings(latency_ms=30)  # a sync long enough to overlap the events
        sync = _sync(sb, db)
        wait_until(
            lambda: any(r["path"].endswith("/contacts") for r in sb.admin.requests()),
            "the sync's first page",
            timeout=120,
        )
        targets = [c["id"] for c in sb.admin.contacts()[:20]]
        for n, contact_id in enumerate(targets):
            api.patch(f"/{contact_id}", json={"job_title": f"title {n}"})
        assert sync.poll() is None, "the sync ended before the events came: no overlap tested"
        _, err = sync.communicate(timeout=300)
        assert sync.returncode == 0, err
        sb.admin.set_settings(latency_ms=0)
        delivered = _delivered_ids(sb)
        wait_applied(listener, len(delivered))
        health = listener.health()
        assert listener.stop() == 0
        assert health["last_error"] is None
        _assert_each_event_once(db, delivered)
        assert_warehouse_matches_server(db, sb)


#: (kills, seed): a quick variant for make test, ten kill points for make chaos.
KILLS = [
    pytest.param(1, 3, id="kills1"),
    pytest.param(10, 11, id="kills10", marks=pytest.mark.chaos),
]


class _Writer(threading.Thread):
    """A steady stream of creates, updates, archives and notes through the public API."""

    def __init__(self, sb: SandboxServer, seed: int) -> None:
        super().__init__(daemon=True)
        self.sb, self.rng = sb, random.Random(seed)
        self.stop = threading.Event()
        self.ops = 0

    def run(self) -> None:
        live: list[str] = []
        with _api(self.sb) as api:
            while not self.stop.wait(0.03):
                roll = self.rng.random()
                if roll < 0.3 or len(live) < 5:
                    live.append(api.post("", json={"first_name": f"w{self.ops}"}).json()["id"])
                elif roll < 0.8:
                    target = self.rng.choice(live)
                    api.patch(f"/{target}", json={"last_name": f"v{self.ops}"})
                elif roll < 0.9:
                    self.sb.admin.add_note(self.rng.choice(live), f"note {self.ops}")
                else:
                    api.delete(f"/{live.pop(self.rng.randrange(len(live)))}")
                self.ops += 1


@pytest.mark.parametrize(("kills", "seed"), KILLS)
def test_kill_9_anywhere_loses_no_acknowledged_event(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    port = free_port()
    db = tmp_path / "w.duckdb"
    config = {"webhook_max_attempts": 60, "webhook_backoff_s": 0.2, "webhook_workers": 4}
    with delivering_sandbox(port, **config) as sb:
        writer = _Writer(sb, seed)
        writer.start()
        try:
            for _ in range(kills):
                listener = Listener(sb, db, port)
                # a random kill point: right away (replaying the spool), mid-stream, mid-flush
                time.sleep(rng.uniform(0.0, 3.0))
                listener.kill()
        finally:
            writer.stop.set()
            writer.join(30)
        final = Listener(sb, db, port)
        delivered = _delivered_ids(sb)  # every event acknowledged, so spooled somewhere
        wait_applied(final, 0)  # the spool is empty: everything acknowledged is applied
        assert writer.ops > kills
        # a scheduled sync heals what the listener never heard of: drop events on purpose
        assert sb.state is not None
        urls, sb.state.webhooks.urls = sb.state.webhooks.urls, []
        live = [c["id"] for c in sb.admin.contacts() if c["archived_at"] is None]
        with _api(sb) as api:
            api.patch(f"/{live[0]}", json={"first_name": "unheard"})
            api.delete(f"/{live[1]}")
            api.post("", json={"first_name": "unheard new"})
        assert final.stop() == 0
        _assert_each_event_once(db, delivered)
        assert len(set(delivered)) == len(query(db, "SELECT event_id FROM contact_events"))
        with pytest.raises(AssertionError):
            assert_warehouse_matches_server(db, sb)  # the dropped events really were missed
        sync = _sync(sb, db)
        _, err = sync.communicate(timeout=300)
        assert sync.returncode == 0, err
        assert_warehouse_matches_server(db, sb)
        sb.state.webhooks.urls = urls
