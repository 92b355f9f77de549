"""Creating, checking and resuming a study.

What a study stores is defined in :mod:`tuner.records` (the contract with the trainer and
the dashboard). This module adds the write side: the :class:`~tuner.records.StudyRecord` made at
creation (built whole by :func:`make_record`, its artifact ids added on upload) and the
check that a resumed run has the same settings. Pictures go through the atomic
artifact store of :mod:`tuner.artifacts` (re-exported here); the study's off-the-shelf
baseline is :mod:`tuner.baseline`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from tuner.artifacts import AtomicFileSystemArtifactStore, atomic_store, mimetype, png_bytes, upload_bytes  # noqa: F401
from tuner.reader import STUDY_ATTR, StorageError, artifact_dir, check_name, safe_name
from tuner.records import StudyRecord, has_study_record

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
                skipped: dict[str, str], seed: int | None, proxy: dict[str, Any] | None = None,
                early_stop: dict[str, Any] | None = None, view_size: int | None = None,
                artifact_folder: Path | None = None, space: dict[str, Any] | None = None) -> StudyRecord:
    """The study record this run wants, whole, before artifacts are attached (:func:`open_or_create` adds them)."""
    import nst

    return StudyRecord(
        style_name=style_path.stem, style_sha256=style_sha256, style_file=style_path.name,
        content_names=tuple(p.name for p in photos), content_sha256={p.name: p.sha256 for p in photos},
        proxy_size=proxy_size, steps=steps, judge=judge,
        objectives=("style", "content") if tradeoff is None else (f"style + {tradeoff:g} * content",),
        tradeoff=tradeoff, networks=tuple(networks), skipped_networks=dict(skipped), space=dict(space or {}),
        early_stop=early_stop, seed=seed, proxy=dict(proxy or {"kind": "gatys"}), view_size=view_size,
        artifact_folder=str(artifact_folder.resolve()) if artifact_folder is not None else None,
        version=RECORD_VERSION, extra={"styletune_version": nst.__version__},
    )


def _describe(key: str, value: Any) -> str:
    if key == "style_sha256":
        return f"a painting with sha256 {str(value)[:12]}..."
    if key == "content_sha256":
        return "test photos " + ", ".join(f"{k} ({str(v)[:8]})" for k, v in (value or {}).items())
    if key == "judge":
        from nst.judge import describe

        return describe(value)
    return f"{key} {value!r}"


def _as_record(record: StudyRecord | Mapping[str, Any]) -> StudyRecord:
    """A record as given, or the stored JSON object of one read as its record."""
    if isinstance(record, StudyRecord):
        return record
    return StudyRecord.from_user_attrs({STUDY_ATTR: record}) or StudyRecord()


def check_same(stored: StudyRecord | Mapping[str, Any], wanted: StudyRecord | Mapping[str, Any],
               study_name: str) -> None:
    """Refuse to continue ``study_name`` with settings other than the ones it was made with.

    The identity fields are compared in their stored (JSON) form, which is also how a
    refusal names them.
    """
    old, new = _as_record(stored).to_user_attrs()[STUDY_ATTR], _as_record(wanted).to_user_attrs()[STUDY_ATTR]
    if (old["judge"].get("name"), old["judge"].get("version")) != (new["judge"].get("name"), new["judge"].get("version")):
        # Another judge version: its scores cannot share a Pareto front with this one's, and
        # this styletune cannot judge the old way, so no flag makes the run possible.
        from nst.judge import describe

        raise StudyMismatch(
            f"study {study_name!r} was scored by {describe(old['judge'])}, this styletune scores with "
            f"{describe(new['judge'])}; the two judges' scores are not comparable, so start a new study "
            f"(--study NEW_NAME); the old one stays readable"
        )
    for key in IDENTITY_KEYS:
        if old[key] != new[key]:
            raise StudyMismatch(
                f"study {study_name!r} was made with {_describe(key, old[key])}, this run has "
                f"{_describe(key, new[key])}; rerun with the study's settings or choose a new --study name"
            )


def open_or_create(storage, name: str, wanted: StudyRecord, *, style_bytes: bytes, photos: list[Photo],
                   store, directions: list[str], sampler, pruner=None,
                   make_space: Callable[[], dict[str, Any]] | None = None,
                   view_photos: list[np.ndarray] | None = None) -> tuple[Any, StudyRecord, bool]:
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
    existed = _exists(storage, name)
    space = make_space() if make_space is not None and not existed else None
    study = optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    stored = StudyRecord.from_user_attrs(study.user_attrs)
    if stored is not None:
        check_same(stored, wanted, name)
        return study, stored, False
    _check_new(study, name, directions)
    record = wanted if make_space is None else replace(wanted, space=space if space is not None else make_space())
    if hashlib.sha256(style_bytes).hexdigest() != record.style_sha256:  # pragma: no cover - the caller hashed the same bytes
        raise StorageError("the painting changed while it was being read; try again")
    uploaded: list[str] = []
    try:
        record = _with_artifacts(record, study, store, style_bytes, photos, view_photos or [], uploaded)
        for key, value in record.to_user_attrs().items():
            study.set_user_attr(key, value)
    except BaseException:
        if not existed:
            _discard_unrecorded(storage, name, store, uploaded)
        raise
    return study, record, True


def _exists(storage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _check_new(study, name: str, directions: list[str]) -> None:
    """Refuse to write a record into a study that has a malformed one, or was made by another tool."""
    if has_study_record(study.user_attrs):
        raise StudyMismatch(f"study {name!r} has a malformed {STUDY_ATTR} record; choose a new --study name")
    if study.trials:
        raise StudyMismatch(f"study {name!r} exists but was not made by `tuner search`; choose a new --study name")
    if [d.name.lower() for d in study.directions] != directions:
        raise StudyMismatch(f"study {name!r} optimises {len(study.directions)} objective(s), this run "
                            f"{len(directions)}; choose a new --study name")


def _with_artifacts(record: StudyRecord, study, store, style_bytes: bytes, photos: list[Photo],
                    views: list[np.ndarray], uploaded: list[str]) -> StudyRecord:
    """Upload the painting, the test photos and their view-size copies; the record with their ids.

    Each id is appended to ``uploaded`` as soon as it exists, so a failure part-way can remove them.
    """
    def upload(data: bytes, filename: str, mime: str) -> str:
        uploaded.append(upload_bytes(store, study, data, filename, mime))
        return uploaded[-1]

    style_artifact = upload(style_bytes, record.style_file, mimetype(record.style_file))
    content = {p.name: upload(png_bytes(p.image), f"{p.name}.png", "image/png") for p in photos}
    view = {p.name: upload(png_bytes(v), f"{p.name}-view.png", "image/png")
            for p, v in zip(photos, views, strict=False)}
    return replace(record, style_artifact=style_artifact, content_artifacts=content, content_view_artifacts=view)


def _discard_unrecorded(storage, name: str, store, artifact_ids: list[str]) -> None:
    """Undo a study creation that failed half-way: its row (if still empty) and its uploaded files."""
    import contextlib

    import optuna

    with contextlib.suppress(Exception):  # best effort: the original error is the one to report
        study = optuna.load_study(study_name=name, storage=storage)
        if not has_study_record(study.user_attrs) and not study.trials:
            optuna.delete_study(study_name=name, storage=storage)
    for artifact_id in artifact_ids:
        with contextlib.suppress(Exception):
            store.remove(artifact_id)


def artifacts_folder(url: str, override: str | None) -> Path:
    return artifact_dir(url, override)
