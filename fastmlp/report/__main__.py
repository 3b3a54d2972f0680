"""``python -m fastmlp.report``: see fastmlp/report/command.py."""

import sys

from ..cli import run_main
from .command import main

if __name__ == "__main__":
    sys.exit(run_main(main))
