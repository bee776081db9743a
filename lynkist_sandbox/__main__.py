"""``python -m lynkist_sandbox``: the sandbox server (used by ``SandboxServer`` process mode)."""

from __future__ import annotations

import argparse
import sys

from pipelines.cli import UsageError
from pipelines.cli.sandbox import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    """Parse the ``lynkist sandbox`` flags and serve."""
    parser = argparse.ArgumentParser(prog="python -m lynkist_sandbox")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
