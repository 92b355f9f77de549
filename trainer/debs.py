"""Debian packages as a source of files: ``apt-get download`` into a cache, ``dpkg-deb -x``, Qt resource files.

Nothing is installed and no root is needed; :mod:`trainer.sample_data` builds the photo
set from what these functions read.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from nst.errors import StyletuneError


class PhotoSetError(StyletuneError):
    """The photo set cannot be built (no apt-get, a package that cannot be downloaded, ...)."""


# --------------------------------------------------------------------------- reading packages


def read_rcc(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every file inside a Qt resource file (``.rcc``), as ``(path, bytes)``.

    Format (Qt's rcc, versions 1-3): a header with the offsets of a tree of 14- or 22-byte
    nodes, a data block and a names block. A node is a directory (children) or a file
    (offset into the data block, zlib-compressed with a 4-byte size prefix when flag 1 is
    set). Zstandard-compressed entries (flag 4, newer Qt) are skipped: image files are
    stored uncompressed because compression does not shrink them.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"qres" or len(data) < 20:
        raise PhotoSetError(f"{path} is not a Qt resource file (no 'qres' header); the package layout changed")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 text
        return data[start:start + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        node = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, node)
        name = name_at(name_offset) if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack_from(">II", data, node + 6)
            stack.extend((child, f"{prefix}{name}/") for child in range(first + count - 1, first - 1, -1))
            continue
        (offset,) = struct.unpack_from(">I", data, node + 10)
        (length,) = struct.unpack_from(">I", data, blobs + offset)
        blob = data[blobs + offset + 4:blobs + offset + 4 + length]
        if flags & 4:
            continue
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        yield prefix + name, blob


def iter_members(root: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """Files of an unpacked package matching a :class:`Pick` pattern, in a stable order."""
    if "!" in pattern:
        outer, inner = pattern.split("!", 1)
        for archive in sorted(root.glob(outer)):
            for name, blob in sorted(read_rcc(archive)):
                if fnmatch.fnmatchcase(name.lstrip("/"), inner.lstrip("/")):
                    yield f"{archive.relative_to(root)}!{name}", blob
        return
    for path in sorted(root.glob(pattern)):
        if path.is_file():
            yield str(path.relative_to(root)), path.read_bytes()


# --------------------------------------------------------------------------- fetching


def default_cache() -> Path:
    """Where downloaded ``.deb`` files are kept between runs (outside the photo folder, which trains as is)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "styletune" / "debs"


def fetch_debs(names: Iterable[str], cache: Path) -> dict[str, Path]:
    """The ``.deb`` of each package, from ``cache`` or downloaded there with ``apt-get download``.

    ``apt-get download`` needs no root: it writes into the current folder as the calling
    user and installs nothing. It does need the package lists, which ``apt-get update``
    (as root) fills once per machine.
    """
    names = list(names)
    cache.mkdir(parents=True, exist_ok=True)
    found = {n: sorted(cache.glob(f"{n}_*.deb"), key=lambda p: p.stat().st_mtime) for n in names}
    missing = [n for n in names if not found[n]]
    if missing:
        if shutil.which("apt-get") is None:
            raise PhotoSetError("apt-get not found: the photo set comes from Debian packages (Debian or Ubuntu "
                                "needed); elsewhere use --source skimage")
        for name in missing:  # one at a time, so the error names the package that failed
            proc = subprocess.run(["apt-get", "download", "-q", name], cwd=cache, capture_output=True, text=True)
            found[name] = sorted(cache.glob(f"{name}_*.deb"), key=lambda p: p.stat().st_mtime)
            if proc.returncode != 0 or not found[name]:
                lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip().startswith("E:")]
                why = lines[-1] if lines else f"apt-get exited with {proc.returncode}"
                raise PhotoSetError(f"cannot download Debian package {name!r} ({why}); run 'apt-get update' "
                                    "as root and retry, or use --source skimage")
    return {n: found[n][-1] for n in names}


def unpack(deb: Path, dest: Path) -> Path:
    """``dpkg-deb -x``: the package's files under ``dest``, without installing anything."""
    if shutil.which("dpkg-deb") is None:
        raise PhotoSetError("dpkg-deb not found: the photo set comes from Debian packages; use --source skimage")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PhotoSetError(f"cannot unpack {deb.name} ({proc.stderr.strip().splitlines()[-1:] or ['dpkg-deb failed']}"
                            f"); delete it from {deb.parent} and retry")
    return dest
