"""The study's artifact store (Optuna's artifact-store protocol on a folder) and the uploads into it."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tuner.storage import StorageError


class AtomicFileSystemArtifactStore:
    """Optuna's artifact-store protocol on a folder, writing each file atomically.

    The layout is ``FileSystemArtifactStore``'s (one file per artifact id in the folder),
    so Optuna's own store reads it; but Optuna's ``write`` opens the final name and copies
    into it, so a worker killed mid-write would leave a truncated artifact under a real id.
    Here the bytes go to a temporary name that is renamed once complete.
    """

    def __init__(self, base_path: str | os.PathLike[str]) -> None:
        self.base_path = Path(base_path)

    def _path(self, artifact_id: str) -> Path:
        base = os.path.abspath(self.base_path)
        path = os.path.abspath(self.base_path / artifact_id)
        if os.path.isabs(artifact_id) or os.path.commonpath([base, path]) != base:
            raise ValueError(f"Invalid artifact_id: {artifact_id}")
        return Path(path)

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            return open(self._path(artifact_id), "rb")
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {artifact_id} not found") from exc

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        from nst.files import atomic_writer

        with atomic_writer(self._path(artifact_id)) as fh:
            while chunk := content_body.read(1 << 20):
                fh.write(chunk)

    def remove(self, artifact_id: str) -> None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            os.remove(self._path(artifact_id))
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {artifact_id} not found") from exc


def atomic_store(folder: str | os.PathLike[str]) -> AtomicFileSystemArtifactStore:
    """The study's artifact store in ``folder`` (created if missing), see :class:`AtomicFileSystemArtifactStore`."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create artifact folder {path} ({exc.strerror}); pass a writable --artifacts") from None
    return AtomicFileSystemArtifactStore(path)


def upload_bytes(store, study_or_trial, data: bytes, filename: str, mimetype: str, storage=None) -> str:
    """Upload ``data`` as an artifact named ``filename``; returns its id."""
    from optuna.artifacts import upload_artifact

    with tempfile.TemporaryDirectory(prefix="styletune-") as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study_or_trial,
                               storage=storage, mimetype=mimetype)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    from nst.images import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def mimetype(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
