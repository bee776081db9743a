"""The README's command table and ``lynkist <command> --help`` name the same flags.

Generic over every sub-command in ``pipelines.cli.COMMANDS``: a flag or command added to the
parser must be documented in the README's table (and a flag dropped from the parser must leave
the table), or this fails and says which.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from pipelines.cli import COMMANDS, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
#: A long flag in the README's text: ``--max-concurrency``, not ``--`` alone or a dash in prose.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def help_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every documented option of ``parser`` by its longest spelling (``--help`` aside)."""
    flags = set()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        flags.add(max(action.option_strings, key=len))
    return flags


def readme_table() -> dict[str, set[str]]:
    """Command -> flags named in its row(s) of the README's ``## Commands`` table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`lynkist ([a-z-]+)([^`]*)`", line)
        if match:
            rows.setdefault(match.group(1), set()).update(FLAG.findall(match.group(2)))
    return rows


def test_the_table_has_one_row_per_command_and_no_other() -> None:
    assert set(readme_table()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_flag_is_in_the_readme_and_vice_versa(command: str) -> None:
    in_help = help_flags(_subparsers()[command])
    in_readme = readme_table().get(command, set())
    assert not in_help - in_readme, f"`lynkist {command}` flags missing from the README's table"
    assert not in_readme - in_help, f"README's `lynkist {command}` row names flags it lacks"


def test_the_flag_finder_sees_flags_and_only_flags() -> None:
    """The regex the comparison rests on: alternatives, metavars and prose dashes."""
    row = "`lynkist push FILE [--tags union\\|replace] [--json] [--quiet\\|--json] a -- b x--y`"
    assert set(FLAG.findall(row)) == {"--tags", "--json", "--quiet"}
