"""``python -m fastmlp.sweep``: see fastmlp/sweep/command.py."""

import sys

from ..cli import run_main
from .command import main

if __name__ == "__main__":
    sys.exit(run_main(main))
