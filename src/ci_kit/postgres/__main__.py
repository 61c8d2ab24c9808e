"""``python -m ci_kit.postgres stop DATA_DIR``: stop the server reuse mode left running."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ci_kit.logs import forwarded_to
from ci_kit.postgres.processes import stop_persistent


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ci_kit.postgres stop DATA_DIR``: stop the server reuse mode left running."""
    parser = argparse.ArgumentParser(
        prog="python -m ci_kit.postgres", description="Manage the PostgreSQL servers ci-kit runs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stop = commands.add_parser("stop", help="stop the server running from a reuse-mode DATA_DIR")
    stop.add_argument("data_dir", metavar="DATA_DIR", type=Path)
    args = parser.parse_args(argv)
    with forwarded_to(print, level=logging.DEBUG):  # the signals it sends, as it sends them
        stopped = stop_persistent(args.data_dir)
    if stopped:
        print(f"stopped the PostgreSQL server running from {args.data_dir}")
    else:
        print(f"no PostgreSQL server is running from {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
