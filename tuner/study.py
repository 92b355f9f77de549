"""Creating, checking and resuming a study.

What a study stores is defined in :mod:`tuner.records` (the contract with the trainer and
the dashboard). This module adds the write side: the study record made at creation and
the check that a resumed run has the same settings. Pictures go through the atomic
artifact store of :mod:`tuner.artifacts` (re-exported here); the study's off-the-shelf
baseline is :mod:`tuner.baseline`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from tuner.artifacts import AtomicFileSystemArtifactStore, atomic_store, mimetype, png_bytes, upload_bytes  # noqa: F401
from tuner.reader import STUDY_ATTR, StorageError, artifact_dir, check_name, safe_name

RECORD_VERSION = 1
#: Keys of the study record that define what a study measures: a run whose values differ
#: from the stored ones would mix incomparable trials, so it is refused.
IDENTITY_KEYS = ("style_sha256", "content_names", "content_sha256", "proxy_size", "steps", "judge", "objectives",
                 "tradeoff", "networks")


class StudyMismatch(StyletuneError):
    """The same study name with different settings."""


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    sha256: str
    image: np.ndarray  # the proxy crop, (S, S, 3)


def load_photos(paths: dict[str, Path], size: int) -> list[Photo]:
    """Load test photos and crop each to a ``size`` square, so they batch."""
    from nst.images import center_crop_square, file_sha256, load_image

    return [Photo(name, Path(p), file_sha256(p), center_crop_square(load_image(p), size)) for name, p in paths.items()]


def content_paths(specs: list[str] | None, count: int) -> dict[str, Path]:
    """``--content`` files or folders (images inside, sorted), else the bundled photos; first ``count``."""
    from nst.images import bundled_photos

    if not specs:
        photos = bundled_photos()
        if not photos:
            raise StyletuneError("scikit-image's sample photos are missing; pass --content PHOTO ...")
        return dict(list(photos.items())[:count])
    exts = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
    out: dict[str, Path] = {}
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in exts and f.is_file())
            if not files:
                raise StyletuneError(f"{p}: no images in this folder (looked for {', '.join(sorted(exts))})")
        elif p.exists():
            files = [p]
        else:
            raise StyletuneError(f"{p}: no such file or folder; check --content")
        for f in files:
            stem = safe_name(f.stem, "photo")[:60]
            name, k = stem, 2
            while name in out:
                name, k = f"{stem}_{k}", k + 1
            out[name] = f
    return dict(list(out.items())[:count])


def make_record(*, style_path: Path, style_sha256: str, photos: list[Photo], proxy_size: int, steps: int,
                judge: dict[str, Any], tradeoff: float | None, networks: tuple[str, ...],
                skipped: dict[str, str], space: dict[str, Any], seed: int | None,
                proxy: dict[str, Any] | None = None, artifact_folder: Path | None = None) -> dict[str, Any]:
    """The ``styletune`` study record before artifacts are attached (see :mod:`tuner.reader`)."""
    import nst

    return {
        "version": RECORD_VERSION,
        "style_name": style_path.stem,
        "style_sha256": style_sha256,
        "style_file": style_path.name,
        "style_artifact": None,
        "content_names": [p.name for p in photos],
        "content_sha256": {p.name: p.sha256 for p in photos},
        "content_artifacts": {},
        "proxy_size": proxy_size,
        "steps": steps,
        "judge": judge,
        "objectives": ["style", "content"] if tradeoff is None else [f"style + {tradeoff:g} * content"],
        "tradeoff": tradeoff,
        "networks": list(networks),
        "skipped_networks": skipped,
        "space": space,
        "seed": seed,
        "proxy": dict(proxy or {"kind": "gatys"}),
        "artifact_folder": str(artifact_folder.resolve()) if artifact_folder is not None else None,
        "styletune_version": nst.__version__,
    }


def _describe(key: str, value: Any) -> str:
    if key == "style_sha256":
        return f"a painting with sha256 {str(value)[:12]}..."
    if key == "content_sha256":
        return "test photos " + ", ".join(f"{k} ({str(v)[:8]})" for k, v in (value or {}).items())
    if key == "judge":
        from nst.judge import describe

        return describe(value)
    return f"{key} {value!r}"


def check_same(stored: dict[str, Any], wanted: dict[str, Any], study_name: str) -> None:
    """Refuse to continue ``study_name`` with settings other than the ones it was made with."""
    old, new = stored.get("judge") or {}, wanted.get("judge") or {}
    if (old.get("name"), old.get("version")) != (new.get("name"), new.get("version")):
        # Another judge version: its scores cannot share a Pareto front with this one's, and
        # this styletune cannot judge the old way, so no flag makes the run possible.
        from nst.judge import describe

        raise StudyMismatch(
            f"study {study_name!r} was scored by {describe(old)}, this styletune scores with {describe(new)}; "
            f"the two judges' scores are not comparable, so start a new study (--study NEW_NAME); the old one stays readable"
        )
    for key in IDENTITY_KEYS:
        if stored.get(key) != wanted.get(key):
            raise StudyMismatch(
                f"study {study_name!r} was made with {_describe(key, stored.get(key))}, this run has "
                f"{_describe(key, wanted.get(key))}; rerun with the study's settings or choose a new --study name"
            )


def open_or_create(storage, name: str, wanted: dict[str, Any], *, style_bytes: bytes, photos: list[Photo],
                   store, directions: list[str], sampler, pruner=None,
                   make_space: Callable[[], dict[str, Any]] | None = None,
                   view_photos: list[np.ndarray] | None = None) -> tuple[Any, dict[str, Any], bool]:
    """Load study ``name`` (checking its record) or create it with ``wanted``; returns (study, record, created).

    ``make_space`` is called only when the study is new: it measures the calibration,
    which a resumed study reads from its record instead. It runs before the study row is
    created, and a failure while the new study is being recorded removes the study again,
    so an error or Ctrl-C never leaves a study without its record behind. ``view_photos``
    (the test photos at the record's ``view_size``, in ``photos``' order) are stored with
    a new study as ``content_view_artifacts``.
    """
    import optuna

    check_name(name)
    try:
        storage.get_study_id_from_name(name)
        existed = True
    except KeyError:
        existed = False
    space = make_space() if make_space is not None and not existed else None
    study = optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is not None:
        if not isinstance(stored, dict):
            raise StudyMismatch(f"study {name!r} has a malformed {STUDY_ATTR} record; choose a new --study name")
        check_same(stored, wanted, name)
        return study, stored, False
    if study.trials:
        raise StudyMismatch(f"study {name!r} exists but was not made by `tuner search`; choose a new --study name")
    if [d.name.lower() for d in study.directions] != directions:
        raise StudyMismatch(f"study {name!r} optimises {len(study.directions)} objective(s), this run "
                            f"{len(directions)}; choose a new --study name")
    record = dict(wanted)
    if make_space is not None:
        record["space"] = space if space is not None else make_space()
    digest = hashlib.sha256(style_bytes).hexdigest()
    if digest != record["style_sha256"]:  # pragma: no cover - the caller hashed the same bytes
        raise StorageError("the painting changed while it was being read; try again")
    uploaded: list[str] = []
    try:
        record["style_artifact"] = upload_bytes(store, study, style_bytes, record["style_file"],
                                                mimetype(record["style_file"]))
        uploaded.append(record["style_artifact"])
        record["content_artifacts"] = {}
        for p in photos:
            record["content_artifacts"][p.name] = upload_bytes(store, study, png_bytes(p.image), f"{p.name}.png",
                                                               "image/png")
            uploaded.append(record["content_artifacts"][p.name])
        record["content_view_artifacts"] = {}
        for p, view in zip(photos, view_photos or [], strict=False):
            record["content_view_artifacts"][p.name] = upload_bytes(store, study, png_bytes(view),
                                                                    f"{p.name}-view.png", "image/png")
            uploaded.append(record["content_view_artifacts"][p.name])
        study.set_user_attr(STUDY_ATTR, record)
    except BaseException:
        if not existed:
            _discard_unrecorded(storage, name, store, uploaded)
        raise
    return study, record, True


def _discard_unrecorded(storage, name: str, store, artifact_ids: list[str]) -> None:
    """Undo a study creation that failed half-way: its row (if still empty) and its uploaded files."""
    import contextlib

    import optuna

    with contextlib.suppress(Exception):  # best effort: the original error is the one to report
        study = optuna.load_study(study_name=name, storage=storage)
        if study.user_attrs.get(STUDY_ATTR) is None and not study.trials:
            optuna.delete_study(study_name=name, storage=storage)
    for artifact_id in artifact_ids:
        with contextlib.suppress(Exception):
            store.remove(artifact_id)


def artifacts_folder(url: str, override: str | None) -> Path:
    return artifact_dir(url, override)
