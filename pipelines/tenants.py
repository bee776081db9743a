"""``lynkist.toml``: the tenants one command syncs, and where their keys come from.

The format (a contract: scripts and tests outside the project write it)::

    [defaults]                          # optional
    base_url = "https://api.lynkist.io" # API root
    duckdb = "warehouse.duckdb"         # DuckDB file, relative to this file's directory
    destination = "duckdb"              # or any dlt destination, e.g. postgres
    max_concurrency = 32                # requests in flight over all tenants together

    [[tenants]]
    name = "acme"                       # [a-z0-9_]+, unique
    api_key_env = "ACME_LYNKIST_KEY"    # the variable holding the key, never the key itself
    dataset = "acme"                    # optional, default = name

Every mistake is a :class:`TenantConfigError` whose message is one line naming the file and,
where there is one, the tenant. Keys are read from the environment only when a command needs
them (:meth:`TenantsConfig.api_key`), and no message ever contains a key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.contact import DEFAULT_BASE_URL
from pipelines.warehouse import DEFAULT_DUCKDB_FILE

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_MAX_CONCURRENCY",
    "Tenant",
    "TenantConfigError",
    "TenantDefaults",
    "TenantsConfig",
    "load_tenants_config",
]

#: The file ``--all`` / ``--tenant`` read when ``--config`` is not given (working directory).
DEFAULT_CONFIG = "lynkist.toml"

#: Requests in flight over all tenants of one command, unless ``[defaults]`` says otherwise.
DEFAULT_MAX_CONCURRENCY = 32

_NAME = re.compile(r"[a-z0-9_]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFAULT_KEYS = frozenset({"base_url", "duckdb", "destination", "max_concurrency"})
_TENANT_KEYS = frozenset({"name", "api_key_env", "dataset"})
#: Keys that would hold a secret in the file itself: refused, whatever their value.
_SECRET_KEYS = frozenset({"api_key", "key", "token", "secret", "password"})


class TenantConfigError(ValueError):
    """``lynkist.toml`` is missing or wrong, or names a tenant that cannot run (exit code 2)."""


@dataclass(frozen=True)
class TenantDefaults:
    """``[defaults]``: what every tenant shares.

    Attributes:
        base_url: API root.
        duckdb: DuckDB warehouse file (absolute; relative paths are read from the config's
            directory).
        destination: dlt destination name.
        max_concurrency: Requests in flight over all tenants together.
    """

    base_url: str = DEFAULT_BASE_URL
    duckdb: Path = Path(DEFAULT_DUCKDB_FILE)
    destination: str = "duckdb"
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY


@dataclass(frozen=True)
class Tenant:
    """One ``[[tenants]]`` entry.

    Attributes:
        name: Tenant name, ``[a-z0-9_]+``.
        api_key_env: Environment variable holding the tenant's key.
        dataset: Dataset (schema) its contacts go to.
    """

    name: str
    api_key_env: str
    dataset: str


@dataclass(frozen=True)
class TenantsConfig:
    """A parsed, validated ``lynkist.toml``."""

    path: Path
    defaults: TenantDefaults
    tenants: tuple[Tenant, ...]

    def names(self) -> list[str]:
        """Tenant names in file order."""
        return [tenant.name for tenant in self.tenants]

    def get(self, name: str) -> Tenant:
        """The tenant called ``name``.

        Raises:
            TenantConfigError: No such tenant in the file.
        """
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        known = ", ".join(self.names())
        raise TenantConfigError(f"{self.path}: no tenant {name!r} (tenants: {known})")

    def select(self, names: Iterable[str] | None) -> list[Tenant]:
        """The tenants called ``names`` (each once, in the given order); all when ``None``."""
        if names is None:
            return list(self.tenants)
        picked: dict[str, Tenant] = {}
        for name in names:
            picked.setdefault(name, self.get(name))
        return list(picked.values())

    def api_key(self, tenant: Tenant, environ: Mapping[str, str] | None = None) -> str:
        """The tenant's key, read from its environment variable.

        Raises:
            TenantConfigError: The variable is unset or empty.
        """
        env = os.environ if environ is None else environ
        key = env.get(tenant.api_key_env, "").strip()
        if not key:
            raise TenantConfigError(
                f"tenant {tenant.name!r}: environment variable {tenant.api_key_env} is not set "
                "— export the tenant's API key in it"
            )
        return key

    def api_keys(
        self, tenants: Iterable[Tenant], environ: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """``{tenant name: key}``, checked for every tenant before any of them runs."""
        return {tenant.name: self.api_key(tenant, environ) for tenant in tenants}


def load_tenants_config(path: str | os.PathLike[str] = DEFAULT_CONFIG) -> TenantsConfig:
    """Read and validate ``lynkist.toml``.

    Raises:
        TenantConfigError: Missing or unreadable file, bad TOML, unknown or mistyped keys, a
            bad or duplicate tenant name, or a key written in the file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        hint = "" if file.exists() else " — write one (see `lynkist sync --help`) or pass --config"
        raise TenantConfigError(f"{file}: no such tenants file{hint}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TenantConfigError(f"{file}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TenantConfigError(f"{file}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"defaults", "tenants"})
    if unknown:
        raise TenantConfigError(
            f"{file}: unknown section {unknown[0]!r} (use [defaults] and [[tenants]])"
        )
    defaults = _defaults(file, data.get("defaults", {}))
    entries = data.get("tenants")
    if not isinstance(entries, list) or not entries:
        raise TenantConfigError(f"{file}: no [[tenants]] entry — add one per tenant")
    tenants: list[Tenant] = []
    for index, entry in enumerate(entries, start=1):
        tenant = _tenant(file, index, entry)
        if any(t.name == tenant.name for t in tenants):
            raise TenantConfigError(f"{file}: tenant {tenant.name!r} is listed twice")
        for other in tenants:
            if other.dataset == tenant.dataset:
                raise TenantConfigError(
                    f"{file}: tenant {tenant.name!r} uses dataset {tenant.dataset!r} of tenant "
                    f"{other.name!r} — give each tenant its own dataset"
                )
        tenants.append(tenant)
    return TenantsConfig(path=file, defaults=defaults, tenants=tuple(tenants))


def _refuse_secrets(file: Path, where: str, table: Mapping[str, Any]) -> None:
    for key in table:
        if key.lower() in _SECRET_KEYS:
            raise TenantConfigError(
                f"{file}: {where} has {key!r} written in the file — never put a key in "
                "lynkist.toml: export it in a variable and name that with api_key_env"
            )


def _defaults(file: Path, table: Any) -> TenantDefaults:
    if not isinstance(table, dict):
        raise TenantConfigError(f"{file}: [defaults] must be a table")
    _refuse_secrets(file, "[defaults]", table)
    unknown = sorted(set(table) - _DEFAULT_KEYS)
    if unknown:
        raise TenantConfigError(
            f"{file}: [defaults] has unknown key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(_DEFAULT_KEYS))})"
        )
    for key in ("base_url", "duckdb", "destination"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise TenantConfigError(f"{file}: [defaults] {key} must be a non-empty string")
    concurrency = table.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise TenantConfigError(f"{file}: [defaults] max_concurrency must be an integer >= 1")
    duckdb = Path(table.get("duckdb", DEFAULT_DUCKDB_FILE)).expanduser()
    return TenantDefaults(
        base_url=table.get("base_url", DEFAULT_BASE_URL),
        # relative to the file, so the same config works from any working directory
        duckdb=duckdb if duckdb.is_absolute() else file.parent.resolve() / duckdb,
        destination=table.get("destination", "duckdb"),
        max_concurrency=concurrency,
    )


def _tenant(file: Path, index: int, entry: Any) -> Tenant:
    if not isinstance(entry, dict):
        raise TenantConfigError(f"{file}: [[tenants]] entry {index} must be a table")
    name = entry.get("name")
    where = f"tenant {name!r}" if isinstance(name, str) else f"[[tenants]] entry {index}"
    _refuse_secrets(file, where, entry)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TenantConfigError(
            f"{file}: {where}: name must be lower-case letters, digits or _ (e.g. acme_eu)"
        )
    unknown = sorted(set(entry) - _TENANT_KEYS)
    if unknown:
        raise TenantConfigError(
            f"{file}: {where} has unknown key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(_TENANT_KEYS))})"
        )
    env = entry.get("api_key_env")
    if not isinstance(env, str) or not env:
        raise TenantConfigError(
            f"{file}: {where} has no api_key_env — name the variable holding its key"
        )
    if not _ENV_NAME.fullmatch(env):
        # the value is likely the key itself: say so without repeating it
        raise TenantConfigError(
            f"{file}: {where}: api_key_env must name an environment variable (e.g. "
            f"{name.upper()}_LYNKIST_KEY), not hold the key — the key belongs in the variable"
        )
    dataset = entry.get("dataset", name)
    if not isinstance(dataset, str) or not _NAME.fullmatch(dataset):
        raise TenantConfigError(f"{file}: {where}: dataset must be lower-case letters, digits or _")
    return Tenant(name=name, api_key_env=env, dataset=dataset)
