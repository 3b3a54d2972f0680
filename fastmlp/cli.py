"""What every fastmlp command shares: one-line errors and exit codes."""

import sys

from .errors import FastMLPError


def run_main(main, argv=None):
    """Run ``main(argv)``; a FastMLPError becomes one line on stderr and its exit code (2, or 3
    for divergence), never a traceback. Returns the exit code."""
    try:
        return main(argv) or 0
    except FastMLPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
