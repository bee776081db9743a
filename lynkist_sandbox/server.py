"""Run the sandbox on a loopback port: in a background thread, or in a child process.

Thread mode is cheap (tests share one server per session). Process mode runs
``python -m lynkist_sandbox`` so the server does not share the client's GIL (benchmarks);
the child writes its base URL, keys and admin token to a JSON info file once it listens.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import uvicorn

from lynkist_sandbox.admin_client import SandboxAdmin
from lynkist_sandbox.app import create_app, seed_on_start
from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.faults import FaultSpec
from lynkist_sandbox.state import SandboxState

STARTUP_TIMEOUT_S = 60.0


class NotifyingServer(uvicorn.Server):
    """A uvicorn server that calls back once it is accepting connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        """Serve ``config``; ``on_ready`` runs in the server's thread once listening."""
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0 picks a free port), ready for uvicorn."""
    # proto must be IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
    # only then, and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, *, access_log: bool = False) -> uvicorn.Config:
    """Uvicorn settings for the sandbox (no access log: quiet, and nothing sensitive leaks)."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        lifespan="on",
        # uvloop and httptools when installed (both extras pull them in): the pure-Python
        # h11 parser and asyncio loop cost measurably more CPU per request
        loop="auto",
        http="auto",
        ws="none",
        backlog=1024,
        timeout_graceful_shutdown=2,
    )


def write_info_file(path: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Write the info JSON atomically, readable by the owner only (it holds keys)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, target)


def config_to_json(config: SandboxConfig) -> str:
    """The config as JSON (for the child process)."""
    return json.dumps(dataclasses.asdict(config))


def config_from_json(text: str) -> SandboxConfig:
    """Read back :func:`config_to_json`."""
    data = json.loads(text)
    data["faults"] = FaultSpec(**data.get("faults", {}))
    return SandboxConfig(**data)


class SandboxServer:
    """A running sandbox: ``base_url``, ``keys``, ``admin_token`` and an ``admin`` client.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: Literal["thread", "process"] = "thread",
    ) -> None:
        """Prepare (not start) a sandbox."""
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.mode = mode
        self.base_url = ""
        self.keys: dict[str, dict[str, str]] = {}
        self.admin_token = ""
        self.state: SandboxState | None = None  # thread mode only
        self._server: NotifyingServer | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: str | None = None
        self._admin: SandboxAdmin | None = None

    @property
    def admin(self) -> SandboxAdmin:
        """Client of the admin API (available once started)."""
        if self._admin is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._admin

    def start(self) -> SandboxServer:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None or self._proc is not None:
            return self
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        self._admin = SandboxAdmin(self.base_url, self.admin_token)
        return self

    def _start_thread(self) -> None:
        state = SandboxState(self.config)
        seed_on_start(state)
        sock = bind_socket(self.host, self.port)
        ready = threading.Event()
        server = NotifyingServer(uvicorn_config(create_app(state=state)), ready.set)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="lynkist-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready.wait(0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                state.close()
                raise RuntimeError("the sandbox server did not start")
        port = sock.getsockname()[1]
        self.state, self._server, self._thread, self._sock = state, server, thread, sock
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        self.keys = state.keyring.keys
        self.admin_token = state.admin_token

    def _start_process(self) -> None:
        self._tmpdir = tempfile.mkdtemp(prefix="lynkist-sandbox-")
        info_path = os.path.join(self._tmpdir, "info.json")
        config_path = os.path.join(self._tmpdir, "config.json")
        log_path = os.path.join(self._tmpdir, "server.log")
        write_info_file(config_path, json.loads(config_to_json(self.config)))
        cmd = [
            sys.executable,
            "-m",
            "lynkist_sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--info-file",
            info_path,
            "--config-file",
            config_path,
            "--quiet",
        ]
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not os.path.exists(info_path):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._stop_process()
                output = Path(log_path).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the sandbox process did not start:\n{output}")
            time.sleep(0.05)
        info = json.loads(Path(info_path).read_text())
        self.base_url = info["base_url"]
        self.port = int(info["port"])
        self.keys = info["keys"]
        self.admin_token = info["admin_token"]

    def stop(self) -> None:
        """Stop serving and release everything (idempotent)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._thread is not None and self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._thread = None
            self._server = None
        if self.state is not None:
            self.state.close()
            self.state = None
        self._stop_process()

    def _stop_process(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def pid(self) -> int | None:
        """The child's process id (process mode), else ``None``."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    config: SandboxConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    info_file: str | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Serve in the calling (main) thread until SIGINT/SIGTERM.

    Args:
        config: The sandbox configuration.
        host: Interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        info_file: Where to write ``{"base_url", "port", "keys", "admin_token", "pid"}`` once
            listening (mode 0600).
        on_ready: Called with the same info once listening.

    Raises:
        OSError: When the port cannot be bound.
    """
    state = SandboxState(config)
    try:
        seed_on_start(state)
        sock = bind_socket(host, port)
        bound = sock.getsockname()[1]
        info = {
            "base_url": f"http://{host}:{bound}",
            "port": bound,
            "keys": state.keyring.keys,
            "admin_token": state.admin_token,
            "pid": os.getpid(),
        }

        def ready() -> None:
            if info_file:
                write_info_file(info_file, info)
            if on_ready is not None:
                on_ready(info)

        server = NotifyingServer(uvicorn_config(create_app(state=state)), ready)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        state.close()
