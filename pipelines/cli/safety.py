"""``--max-delete-share``, shared by ``lynkist sync`` and ``lynkist push`` (whose refresh syncs)."""

from __future__ import annotations

import argparse

#: Same default as :data:`pipelines.source.safety.DEFAULT_MAX_DELETE_SHARE` (not imported:
#: building the parser stays free of dlt).
DEFAULT_SHARE_TEXT = "50%"


def delete_share(text: str) -> float:
    """``"50%"`` or ``"0.5"`` -> 0.5; argparse turns a ValueError into a one-line error."""
    value = text.strip()
    try:
        share = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a share: give a fraction (0.5) or a percentage (50%)"
        ) from None
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be between 0 and 1 (0%-100%)")
    return share


def add_delete_share_argument(parser: argparse.ArgumentParser) -> None:
    """Declare ``--max-delete-share``."""
    parser.add_argument(
        "--max-delete-share",
        type=delete_share,
        default=delete_share(DEFAULT_SHARE_TEXT),
        metavar="SHARE",
        help="refuse (exit 2, nothing written) a sync that would mark more than this share of "
        # argparse %-formats help texts: the default's percent sign is escaped
        f"the warehouse's live contacts deleted (default {DEFAULT_SHARE_TEXT.replace('%', '%%')}; "
        "1 disables)",
    )
