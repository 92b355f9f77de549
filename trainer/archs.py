"""The names of the feed-forward architectures, importable without Keras.

The command line lists them in ``--help`` and validates ``--network``; importing
:mod:`trainer.nets` for that would load TensorFlow and make ``trainer --help`` take
seconds. :mod:`trainer.nets` builds them.
"""

from __future__ import annotations

#: name -> one line for ``--help``; the first is the default.
ARCH_HELP: dict[str, str] = {
    "johnson": "Johnson et al. 2016 with instance norm (default)",
    "fast": "depthwise-separable, half resolution: about 8x faster at inference",
    "magenta": "Magenta's arbitrary-stylisation transformer with the painting folded in, fine-tuned (minutes on a CPU)",
}
ARCHS: tuple[str, ...] = tuple(ARCH_HELP)
