"""``lynkist <command> --help`` prints the usage and exits 0, for every command."""

from __future__ import annotations

import pytest

from pipelines.cli import main

COMMANDS = ["sandbox", "sync", "push", "listen", "report", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_prints_the_usage_and_exits_0(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: "), out.err
