"""TensorFlow's start-up output, kept off our users' terminals: the one place that handles it.

Importing TensorFlow prints lines of its own to standard error before its logging is set
up, so no environment variable silences them: on CPUs where oneDNN is on (AVX-512
machines, or anywhere with ``TF_ENABLE_ONEDNN_OPTS=1``), every import writes
``WARNING: All log messages before absl::InitializeLog() ...`` and an ``I0000 ... port.cc]
oneDNN custom operations are on`` notice, twice. Later messages (XLA's "Compiled cluster
using XLA!", CPU feature notices) do honour ``TF_CPP_MIN_LOG_LEVEL``, but only the value
it had when TensorFlow was imported.

So :func:`install` puts a finder on ``sys.meta_path`` that wraps the first import of
``tensorflow``, whoever triggers it (our modules, Keras, Streamlit's script runner):

* file descriptor 2 is pointed at a temporary file for the duration of the import, which
  catches what the C++ libraries write, and is put back afterwards;
* ``TF_CPP_MIN_LOG_LEVEL`` is ``2`` (errors only) during the import, which sets the level
  for the rest of the process; the caller's environment is restored afterwards, so child
  processes see what the user set;
* TensorFlow's Python logger is set to errors only.

If the import fails, what it printed is written to standard error before the exception
goes on, so the reason still reaches the user. oneDNN itself stays on: only its notice
is dropped. ``STYLETUNE_TF_LOGS=1`` turns all of this off, for debugging TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

LOGS_VAR = "STYLETUNE_TF_LOGS"
_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block; drop it on success, replay it on failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))  # the failed import's own words
            sys.stderr.flush()
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module should look as if nothing wrapped it (some code inspects its loader).
        module.__loader__ = self.real
        if module.__spec__ is not None:
            module.__spec__.loader = self.real
        previous = os.environ.get(_LEVEL_VAR)
        os.environ[_LEVEL_VAR] = "2"
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        try:
            with _quiet_stderr():
                self.real.exec_module(module)
        finally:
            if previous is None:
                os.environ.pop(_LEVEL_VAR, None)
            else:
                os.environ[_LEVEL_VAR] = previous


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders, then wraps its loader (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()  # one import only; nested look-ups go straight to the real finders
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


_finder = _QuietFinder()


def install() -> None:
    """Wrap the coming import of TensorFlow (no-op if it is imported already or logs are wanted)."""
    if os.environ.get(LOGS_VAR, "") not in ("", "0") or "tensorflow" in sys.modules:
        return
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
