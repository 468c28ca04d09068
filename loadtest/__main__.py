"""Entry point of ``python -m loadtest`` and ``recsys-loadtest``."""

from __future__ import annotations

import sys

from .cli import main as _main


def main() -> None:
    """Run the CLI and exit with its status."""
    sys.exit(_main())


if __name__ == "__main__":
    main()
