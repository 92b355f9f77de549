"""One way to write a file so that no reader ever sees half of it.

Searches and training runs get killed (out-of-memory killer, Ctrl-C, a reboot), and the
dashboard reads while they write. So every file styletune writes goes to a temporary name
in the same folder, is flushed to disk, and is then renamed over the real name: a reader
sees the old file or the whole new one. The temporary file is created private (that is
what :func:`tempfile.mkstemp` does); before the rename it gets the permissions an ordinary
``open()`` would have given it under the user's umask, so results are not hidden from
the user's group or from a web server.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _read_umask() -> int:
    # os.umask can only be read by setting it; do that once, at import, rather than on every
    # write, where another thread (the dashboard serves several sessions) could create a file
    # in the moment the temporary value is in force.
    current = os.umask(0o022)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_read_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for writers that need a name (``model.save``); it replaces ``path`` on success.

    ``suffix`` ends the temporary name (Keras picks the format from ``.keras``). The file
    is flushed to disk and given ordinary permissions before the rename; on an error it
    is removed and ``path`` is unchanged.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file to write ``path``'s new content to; it replaces ``path`` only on success.

    Folders are created as needed. If the block raises (or the process dies), ``path`` is
    unchanged and the temporary file is removed (or, after a kill, left as a stray
    ``.NAME.*.tmp`` that readers ignore).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` atomically; return the path."""
    with atomic_writer(path) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return Path(path)
