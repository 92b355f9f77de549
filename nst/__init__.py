"""styletune's style engine: images, loss networks, StyleConfig, losses, Gatys optimiser, judge.

Imports nothing from ``tuner``, ``trainer`` or ``dashboard``; they import from here.
"""

from __future__ import annotations

from nst import tflog

# TensorFlow's start-up chatter is noise for our users, on every CPU (see nst.tflog).
tflog.install()

from nst.config import RECIPES, StyleConfig  # noqa: E402
from nst.errors import ConfigError, ImageError, StyletuneError, WeightsUnavailable  # noqa: E402

__all__ = ["RECIPES", "ConfigError", "ImageError", "StyleConfig", "StyletuneError", "WeightsUnavailable"]
__version__ = "0.1.0"
