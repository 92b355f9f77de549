"""One way to write a file, and one way to replace a folder, so that no reader ever sees half of either.

Searches and training runs get killed (out-of-memory killer, Ctrl-C, a reboot), and the
dashboard reads while they write. So every file styletune writes goes to a temporary name
in the same folder, is flushed to disk, and is then renamed over the real name: a reader
sees the old file or the whole new one. The temporary file is created private (that is
what :func:`tempfile.mkstemp` does); before the rename it gets the permissions an ordinary
``open()`` would have given it under the user's umask, so results are not hidden from
the user's group or from a web server. Folders (an export, a new run) are assembled
under a hidden name beside the real one and swapped in whole: :func:`staged_dir`,
:func:`replace_dir`.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import sys
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


_UMASK = _read_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


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


# -- folders -------------------------------------------------------------------------------------
#
# A folder cannot be overwritten by one rename the way a file can: rename(2) refuses a
# non-empty folder as its destination. Linux has an atomic swap of two names,
# renameat2(RENAME_EXCHANGE) (3.15+; ext4, xfs, btrfs, tmpfs and most others), which
# Python does not expose, so it is called through ctypes. Temporaries are hidden siblings
# of the target, ``.NAME.XXXXXXXX.new`` (the folder being assembled, or the swapped-out
# old copy being deleted) and ``.NAME.XXXXXXXX.old`` (the old copy during the fallback's
# two renames); :func:`recover_dir` clears them up after a kill.

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "arm64": 276, "riscv64": 276, "i686": 353, "i386": 353}
_NEW, _OLD = ".new", ".old"


def _renameat2(src: str, dst: str, flags: int) -> int:
    """Linux renameat2(2); 0 on success, else the errno (ENOSYS where there is no such call)."""
    if sys.platform != "linux":
        return errno.ENOSYS
    import ctypes
    import platform

    libc = ctypes.CDLL(None, use_errno=True)
    args = (ctypes.c_int(_AT_FDCWD), os.fsencode(src), ctypes.c_int(_AT_FDCWD), os.fsencode(dst),
            ctypes.c_uint(flags))
    if hasattr(libc, "renameat2"):  # glibc 2.28+
        result = libc.renameat2(*args)
    elif platform.machine() in _SYS_RENAMEAT2:  # older glibc, or musl: the raw system call
        result = libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[platform.machine()]), *args)
    else:
        return errno.ENOSYS
    return 0 if result == 0 else ctypes.get_errno()


def _lock(path: Path) -> int | None:
    """Hold an advisory lock on ``path`` (a folder or file) until :func:`_unlock`; None if another process holds it.

    The lock goes with the process: a killed writer's temporaries become free to clean.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; every temporary counts as abandoned
        return -1
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            if not os.path.islink(os.path.join(folder, name)):
                _sync(Path(folder, name))
        _sync(Path(folder))


def recover_dir(path: str | os.PathLike[str]) -> None:
    """Clean up after a :func:`replace_dir` that was killed: restore a missing ``path``, delete temporaries.

    Only the fallback's two renames can leave ``path`` missing (killed between them); its
    old copy, ``.NAME.*.old``, is then renamed back. Temporaries a live writer still holds
    (it keeps a lock on them) are left alone. Called by every :func:`staged_dir` and
    :func:`replace_dir`, and safe to call from a reader.
    """
    target = Path(path)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}({re.escape(_NEW)}|{re.escape(_OLD)})")
    try:
        names = [n for n in os.listdir(target.parent) if pattern.fullmatch(n)]
    except OSError:
        return
    leftovers = []
    for name in names:
        fd = _lock(target.parent / name)
        if fd is not None:  # nobody holds it: left by a killed process
            _unlock(fd)
            leftovers.append(target.parent / name)
    olds = sorted((p for p in leftovers if p.name.endswith(_OLD)), key=lambda p: p.lstat().st_mtime)
    if olds and not os.path.lexists(target):
        try:
            os.rename(olds[-1], target)
            leftovers.remove(olds[-1])
        except OSError:
            pass  # another process put a folder there in the meantime
    for leftover in leftovers:
        _remove(leftover)


def replace_dir(staged: str | os.PathLike[str], target: str | os.PathLike[str], *, replace: bool = True) -> Path:
    """Move the folder ``staged`` to ``target`` (same file system), replacing what is there; return ``target``.

    Guarantees, for a process killed at any moment:

    * ``target`` did not exist: one ``rename`` puts the whole new folder there, or nothing.
    * ``target`` exists, on Linux 3.15+ on a file system with ``RENAME_EXCHANGE`` (ext4,
      xfs, btrfs, tmpfs, ...): the two names are swapped in one step, so ``target`` always
      holds the whole old folder or the whole new one, never neither; the old copy is
      then deleted from its hidden name.
    * ``target`` exists, elsewhere (macOS, old kernels, file systems refusing the swap):
      two renames, ``target`` -> ``.NAME.*.old`` then ``staged`` -> ``target``. A reader
      can find ``target`` missing in the moment between them, and a kill in that moment
      leaves it missing until the next :func:`replace_dir`, :func:`staged_dir` or
      :func:`recover_dir` for ``target`` renames the old copy back.

    The folder gets the permissions of an ordinary ``mkdir`` and its files are flushed to
    disk before the move. With ``replace=False`` an existing ``target`` is never touched:
    ``FileExistsError`` (atomic with ``RENAME_NOREPLACE``; elsewhere checked just before).
    """
    staged, target = Path(staged), Path(target)
    hold = _lock(staged)  # so that recover_dir, here or in another process, leaves it alone
    try:
        recover_dir(target)
        os.chmod(staged, _DIR_MODE)
        _sync_tree(staged)
        if not replace:
            code = _renameat2(str(staged), str(target), _RENAME_NOREPLACE)
            if code in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(code, os.strerror(code), str(target))
            if code in (errno.ENOSYS, errno.EINVAL):
                if os.path.lexists(target):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
                os.rename(staged, target)
            elif code:
                raise OSError(code, os.strerror(code), str(target))
        elif not os.path.lexists(target):
            os.rename(staged, target)  # an empty folder created there meanwhile is replaced too
        else:
            code = _renameat2(str(staged), str(target), _RENAME_EXCHANGE)
            if code == 0:
                _remove(staged)  # now the old copy
            elif code in (errno.ENOSYS, errno.EINVAL):
                _replace_in_two_renames(staged, target)
            else:
                raise OSError(code, os.strerror(code), str(target))
        _sync(target.parent)
    finally:
        _unlock(hold)
    return target


def _replace_in_two_renames(staged: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.{secrets.token_hex(4)}{_OLD}"
    hold = _lock(target)  # the old copy stays locked while it sits at its hidden name
    try:
        os.rename(target, old)
        try:
            os.rename(staged, target)
        except BaseException:
            os.rename(old, target)
            raise
    finally:
        _unlock(hold)
    trash = old.with_name(old.name[: -len(_OLD)] + _NEW)  # never restored, should deleting it be cut short
    os.rename(old, trash)
    _remove(trash)


@contextmanager
def staged_dir(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``path`` to assemble the new folder in; it replaces ``path`` on success.

    The move is :func:`replace_dir` (see its guarantees; ``replace=False`` refuses an
    existing ``path``). If the block raises, the folder is removed and ``path`` is unchanged;
    if the process is killed, the next call for ``path`` removes it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=_NEW, dir=target.parent))
    hold = _lock(staged)
    try:
        yield staged
        replace_dir(staged, target, replace=replace)
    finally:
        _unlock(hold)
        _remove(staged)  # after a swap: the old copy; after a plain rename: nothing
