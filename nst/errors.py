"""Error types a user can be shown as one line.

Every error that comes from bad input (a file, a setting, a missing weights file)
derives from :class:`StyletuneError`. The command-line front ends catch exactly this
class, print ``error: <message>`` and exit with status 2, so the message itself must
name the problem and the fix.
"""

from __future__ import annotations


class StyletuneError(Exception):
    """Base class for errors caused by input a user can fix."""


class ImageError(StyletuneError):
    """An image file that cannot be used (missing, corrupt, too small, ...)."""


class ConfigError(StyletuneError):
    """A StyleConfig (or its JSON) that is invalid."""


class WeightsUnavailable(StyletuneError):
    """Pretrained weights for a loss network are not on this machine and cannot be fetched."""


class StyletuneNote(UserWarning):
    """Something a user should hear about once but that is not an error (an animation's first frame is used, ...).

    The command-line front ends print these as one ``<prog>: note: <message>`` line.
    """


def caused_by_interrupt(exc: BaseException) -> bool:
    """True if ``exc`` is, or was raised while handling, a Ctrl-C / SIGTERM interrupt.

    A signal that lands inside a C extension's import (onnxruntime's, for one) comes
    back as an ``ImportError`` whose cause is the ``KeyboardInterrupt``; callers that
    must treat a stop as a stop check the whole chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class TrainingDiverged(StyletuneError):
    """A training step's loss, a term or a weight became NaN or infinite."""
