"""``lynkist.toml``: what it accepts, and one line naming the tenant for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.tenants import (
    DEFAULT_MAX_CONCURRENCY,
    TenantConfigError,
    load_tenants_config,
)
from pipelines.warehouse import DEFAULT_DUCKDB_FILE

SECRET = "lk_live_Zq8SecretKeyNeverEchoed41"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lynkist.toml"
    path.write_text(text)
    return path


def test_defaults_and_dataset_default_to_the_name(tmp_path: Path) -> None:
    config = load_tenants_config(
        _write(
            tmp_path,
            """
            [defaults]
            duckdb = "warehouse.duckdb"
            max_concurrency = 12

            [[tenants]]
            name = "acme"
            api_key_env = "ACME_LYNKIST_KEY"

            [[tenants]]
            name = "globex_eu"
            api_key_env = "GLOBEX_KEY"
            dataset = "globex"
            """,
        )
    )
    assert config.names() == ["acme", "globex_eu"]
    assert [t.dataset for t in config.tenants] == ["acme", "globex"]
    # relative to the file, not to the working directory
    assert config.defaults.duckdb == tmp_path.resolve() / "warehouse.duckdb"
    assert config.defaults.destination == "duckdb"
    assert config.defaults.max_concurrency == 12
    assert config.api_key(config.get("acme"), {"ACME_LYNKIST_KEY": " k1 "}) == "k1"


def test_without_defaults(tmp_path: Path) -> None:
    config = load_tenants_config(
        _write(tmp_path, '[[tenants]]\nname = "a1"\napi_key_env = "A1_KEY"\n')
    )
    assert config.defaults.max_concurrency == DEFAULT_MAX_CONCURRENCY
    assert config.defaults.duckdb.name == DEFAULT_DUCKDB_FILE
    assert config.select(["a1", "a1"]) == list(config.tenants)


TENANT = '[[tenants]]\nname = "acme"\napi_key_env = "ACME_KEY"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f'[[tenants]]\nname = "acme"\napi_key = "{SECRET}"\napi_key_env = "K"\n',
            "tenant 'acme' has 'api_key' written in the file",
        ),
        (
            f'[defaults]\napi_key = "{SECRET}"\n' + TENANT,
            "[defaults] has 'api_key' written in the file",
        ),
        (
            f'[[tenants]]\nname = "acme"\napi_key_env = "{SECRET}-x"\n',
            "tenant 'acme': api_key_env must name an environment variable",
        ),
        ('[[tenants]]\nname = "Acme Corp"\napi_key_env = "K"\n', "name must be lower-case"),
        ('[[tenants]]\nname = "acme"\n', "tenant 'acme' has no api_key_env"),
        (TENANT + TENANT, "tenant 'acme' is listed twice"),
        (
            TENANT + '[[tenants]]\nname = "b"\napi_key_env = "B"\ndataset = "acme"\n',
            "tenant 'b' uses dataset 'acme' of tenant 'acme'",
        ),
        ('[[tenants]]\nname = "acme"\napi_key_env = "K"\ndatset = "x"\n', "unknown key 'datset'"),
        ("[defaults]\nmax_concurrency = 0\n" + TENANT, "max_concurrency must be an integer"),
        ("[defaults]\nduckdb = 3\n" + TENANT, "duckdb must be a non-empty string"),
        ("[tenant]\nname = 'acme'\n", "unknown section 'tenant'"),
        ("[defaults]\n", "no [[tenants]] entry"),
        ("[[tenants]\nname=", "not valid TOML"),
    ],
)
def test_mistakes_are_one_line_without_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TenantConfigError) as caught:
        load_tenants_config(_write(tmp_path, text))
    text_out = str(caught.value)
    assert message in text_out
    assert "\n" not in text_out
    assert SECRET not in text_out


def test_missing_file_unknown_tenant_and_unset_variable(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError, match="no such tenants file"):
        load_tenants_config(tmp_path / "absent.toml")
    config = load_tenants_config(_write(tmp_path, TENANT))
    with pytest.raises(TenantConfigError, match=r"no tenant 'initech' \(tenants: acme\)"):
        config.select(["initech"])
    with pytest.raises(TenantConfigError, match="tenant 'acme': environment variable ACME_KEY"):
        config.api_keys(config.tenants, {"ACME_KEY": "  "})
