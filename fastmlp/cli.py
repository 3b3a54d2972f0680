"""What every fastmlp command shares: one-line errors and exit codes, and the help of the
flags several of them take."""

import argparse
import os
import sys

from .errors import FastMLPError

# evaluate's and predict's --activation
ACTIVATION_HELP = ("the model's user activation, module:name (e.g. myacts:SWISH), needed for a "
                   "model trained with one: a checkpoint names it, but loading never imports it")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (the flag, the problem, where to look) and exit
    code 2, like every other bad input."""

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def run_main(main, argv=None):
    """Run ``main(argv)``; a FastMLPError becomes one line on stderr and its exit code (2, 3
    for divergence, 1 for an output that could not be written), never a traceback. Output
    piped into a program that stops reading (``| head``) ends the command quietly. Returns the
    exit code."""
    try:
        return main(argv) or 0
    except FastMLPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader is gone: point stdout at /dev/null so the interpreter's final flush does
        # not fail again, and exit as a process killed by SIGPIPE would.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout replaced
            pass
        return 141
