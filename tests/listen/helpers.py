"""Running ``lynkist listen`` as a subprocess against a sandbox that delivers to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx

from lynkist_sandbox import SandboxConfig, SandboxServer
from pipelines.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from tests.waiting import wait_until

SECRET = "whsec_listen_tests"
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivering_sandbox(port: int, **config: Any) -> SandboxServer:
    """A started sandbox that delivers its webhooks to a listener on ``port``."""
    config.setdefault("webhook_secret", SECRET)
    config.setdefault("webhook_backoff_s", 0.2)
    urls = [f"http://127.0.0.1:{port}/webhooks/lynkist"]
    return SandboxServer(SandboxConfig(webhook_urls=urls, **config)).start()


class Listener:
    """One ``lynkist listen --json`` process; its JSON lines are collected by a thread."""

    def __init__(
        self, sandbox: SandboxServer, db: Path, port: int, *extra: str, secret: str = SECRET
    ) -> None:
        self.db, self.port = db, port
        env = {
            **os.environ,
            "LYNKIST_API_KEY": sandbox.keys["acme"]["rw"],
            "LYNKIST_BASE_URL": sandbox.base_url,
            "LYNKIST_WEBHOOK_SECRET": secret,
        }
        args = ["--duckdb", str(db), "--port", str(port), "--json", "--flush-interval", "0.2"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "listen", *args, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=db.parent,
        )
        self.lines: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda line: line["event"] == "listening", STARTUP_TIMEOUT_S)
        self.base = f"http://127.0.0.1:{port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(json.loads(raw))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        """Wait until an output line matches ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(predicate(line) for line in self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"listener output never matched; got {self.lines}")
                self._cond.wait(min(remaining, 0.1))

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        response = httpx.get(f"{self.base}/healthz", timeout=10, trust_env=False)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        self.proc.wait(30)
        self._reader.join(10)

    def stderr(self) -> str:
        """What the process wrote on stderr (after it exited)."""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


@contextlib.contextmanager
def listening(sandbox: SandboxServer, db: Path, port: int, *extra: str) -> Iterator[Listener]:
    """A listener for the block; SIGTERM at the end (exit code checked by the caller)."""
    listener = Listener(sandbox, db, port, *extra)
    try:
        yield listener
    finally:
        if listener.proc.poll() is None:
            listener.stop()


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the warehouse file read-only (as a notebook between flushes would)."""
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("USE " + _catalog(con) + ".lynkist")
        return con.execute(sql).fetchall()


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def try_query(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Like :func:`query`, None while the listener holds the file or the table is missing."""
    try:
        return query(db, sql)
    except (duckdb.IOException, duckdb.CatalogException):
        return None


def event_body(kind: str, data: dict[str, Any], *, occurred_at: str | None = None) -> bytes:
    """A delivery body as the sandbox builds it, with a fresh event id."""
    event = {
        "id": str(uuid.uuid4()),
        "event": kind,
        "tenant": "acme",
        "occurred_at": occurred_at or data.get("updated_at") or data.get("created_at"),
        "data": data,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def deliver(
    listener: Listener, body: bytes, *, secret: str = SECRET, timestamp: int | None = None
) -> httpx.Response:
    """POST ``body`` to the listener, signed as the sandbox signs it."""
    event_id = json.loads(body)["id"]
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret, timestamp),
        EVENT_ID_HEADER: event_id,
    }
    return httpx.post(
        f"{listener.base}/webhooks/lynkist",
        content=body,
        headers=headers,
        timeout=30,
        trust_env=False,
    )


def wait_applied(listener: Listener, n: int, timeout: float = 120.0) -> None:
    """Wait until the listener has applied at least ``n`` events and its queue is empty."""

    def done() -> bool:
        health = listener.health()
        return bool(health["applied_events"] >= n and health["queue_depth"] == 0)

    wait_until(done, f"{n} applied events", timeout=timeout)
