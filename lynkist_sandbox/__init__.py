"""A local, faithful Lynkist Contacts API: FastAPI + uvicorn on loopback, SQLite storage.

Start one with ``lynkist sandbox`` or, from Python::

    with SandboxServer(SandboxConfig(seed_contacts=1000)) as sb:
        key = sb.keys["acme"]["rw"]
        ...  # talk to sb.base_url; steer it with sb.admin
"""

from __future__ import annotations

from lynkist_sandbox.admin_client import SandboxAdmin
from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.server import SandboxServer

__all__ = ["SandboxAdmin", "SandboxConfig", "SandboxServer"]
