"""What can go wrong when a runner opens, locks or reads the warehouse."""

from __future__ import annotations

__all__ = [
    "WarehouseConfigError",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseNotFoundError",
]


class WarehouseError(Exception):
    """The warehouse cannot be used (opened, written, read)."""


class WarehouseConfigError(WarehouseError):
    """Bad warehouse settings: unwritable path, unknown destination, missing credentials.

    A user mistake: the command line shows the message and exits with code 2.
    """


class WarehouseLockedError(WarehouseError):
    """Another run (sync, push, listener) holds this warehouse's lock."""


class WarehouseNotFoundError(WarehouseError, FileNotFoundError):
    """The warehouse, its dataset or its contacts table does not exist yet."""
