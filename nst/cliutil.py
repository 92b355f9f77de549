"""Shared plumbing for styletune's command-line tools (``tuner``, ``trainer``).

One behaviour for every command: bad input prints ``<prog>: error: <one line>`` and
exits 2 without a traceback; Ctrl-C prints how to resume and exits 130; a note (e.g.
"animated image, using its first frame") prints as one ``<prog>: note: <message>`` line.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence

from nst.errors import StyletuneError, StyletuneNote, caused_by_interrupt

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line naming the fix, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


class ShownChoices(tuple):
    """argparse ``choices`` that lists only ``shown`` (in ``--help`` and in errors) but accepts all of ``accepted``.

    The loss networks with random weights (``tiny``, ``random``) exist for the tests'
    mechanics; a user should never be offered them, yet the tests call the real command.
    """

    def __new__(cls, shown: Iterable[str], accepted: Iterable[str]):
        self = super().__new__(cls, tuple(shown))
        self.accepted = frozenset(accepted) | frozenset(self)
        return self

    def __contains__(self, value: object) -> bool:
        return value in self.accepted


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


def _notes_as_lines(prog: str) -> None:
    """Show :class:`~nst.errors.StyletuneNote` warnings as ``<prog>: note: <message>``, one line each.

    Python's default display adds the source file and line of code, which means nothing
    to a user. Whoever warns decides how often (``load_image`` says it once per file), so
    notes are never filtered here. Other warnings keep their usual display.
    """
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, StyletuneNote):
            sys.stderr.write(f"{prog}: note: {message}\n")
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", StyletuneNote)
    warnings.showwarning = show


def run_main(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, dispatch to ``args.func(args)``, and turn user errors into one line + exit 2."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():
            _notes_as_lines(prog)
            return int(args.func(args) or 0)
    except StyletuneError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_USAGE
    except BaseException as exc:
        if not caused_by_interrupt(exc):  # a Ctrl-C that cut an import short comes back as ImportError
            raise
        hint = getattr(args, "resume_hint", None)
        sys.stderr.write(f"\n{prog}: interrupted" + (f"; resume with: {hint}" if hint else "") + "\n")
        return EXIT_INTERRUPTED
