"""Shared plumbing for styletune's command-line tools (``tuner``, ``trainer``).

One behaviour for every command: bad input prints ``<prog>: error: <one line>`` and
exits 2 without a traceback; Ctrl-C prints how to resume and exits 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from nst.errors import StyletuneError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line naming the fix, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    """argparse type: an integer within ``[lo, hi]`` with a message saying the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi}, not {value}")
        return value

    parse.__name__ = what
    return parse


def float_in(lo: float, hi: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo:g} and {hi:g}, not {value:g}")
        return value

    parse.__name__ = what
    return parse


def run_main(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, dispatch to ``args.func(args)``, and turn user errors into one line + exit 2."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except StyletuneError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", None)
        sys.stderr.write(f"\n{prog}: interrupted" + (f"; resume with: {hint}" if hint else "") + "\n")
        return EXIT_INTERRUPTED
