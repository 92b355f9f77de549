"""Creating, checking and resuming a study, and its off-the-shelf baseline.

What a study stores is defined in :mod:`tuner.records` (the contract with the trainer and
the dashboard). This module adds the write side: the study record made at creation, the
check that a resumed run has the same settings, and the baseline. Pictures go through the
atomic artifact store of :mod:`tuner.artifacts` (re-exported here).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
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
                proxy: dict[str, Any] | None = None) -> dict[str, Any]:
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
                   make_space: Callable[[], dict[str, Any]] | None = None) -> tuple[Any, dict[str, Any], bool]:
    """Load study ``name`` (checking its record) or create it with ``wanted``; returns (study, record, created).

    ``make_space`` is called only when the study is new: it measures the calibration,
    which a resumed study reads from its record instead. It runs before the study row is
    created, and a failure while the new study is being recorded removes the study again,
    so an error or Ctrl-C never leaves a study without its record behind.
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


# -- the off-the-shelf baseline ---------------------------------------------------------------

#: Study user attribute holding the :class:`Baseline` record.
BASELINE_ATTR = "baseline"
BASELINE_VERSION = 1
BASELINE_MODEL = "magenta-arbitrary"


class BaselineUnavailable(StyletuneError):
    """The baseline cannot be computed here (model or judge weights missing, judge changed)."""


@dataclass(frozen=True)
class Baseline:
    """Magenta's arbitrary stylisation (Ghiasi et al. 2017) on a study's test photos, scored by the study's judge.

    It needs no training and no search, so it is the reference a study has to beat: a
    trial whose style and content scores are both lower (0 = ideal) is better than the
    off-the-shelf model for this painting by the judge's measure. Stored once per study
    as the user attribute ``baseline`` (:meth:`to_dict`); its pictures are study artifacts.
    """

    scores: dict[str, float]  # {"style", "content", "noise"}: means over the test photos
    per_photo: dict[str, dict[str, float]]
    artifacts: dict[str, str]  # {"<content name>": id, "sheet": id}: PNGs at the proxy size
    feasible: bool  # noise within the judge's limit, as for a trial
    side: int  # long side at which the transformer painted (the photos are resized to it and back)
    seconds: float
    model: str = BASELINE_MODEL
    version: int = BASELINE_VERSION

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Baseline | None:
        """The record, or None when it is absent, malformed or from another version (then it is recomputed)."""
        from dataclasses import fields

        if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
            return None
        names = {f.name for f in fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
            scores = {k: float(record.scores[k]) for k in ("style", "content", "noise")}
        except (TypeError, KeyError, ValueError):
            return None
        return cls(**{**record.to_dict(), "scores": scores})

    def beaten_by(self, scores: Any, tradeoff: float | None = None) -> bool:
        """Whether a trial's judge scores beat this baseline.

        Two objectives: lower on both style and content (Pareto dominance, so neither score
        was bought with the other). One objective (``--tradeoff t``): a lower style + t * content.
        """
        try:
            s, c = float(scores["style"]), float(scores["content"])
        except (TypeError, KeyError, ValueError):
            return False
        bs, bc = self.scores["style"], self.scores["content"]
        if tradeoff is not None:
            return s + tradeoff * c < bs + tradeoff * bc
        return s <= bs and c <= bc and (s < bs or c < bc)


def read_baseline(user_attrs: dict[str, Any]) -> Baseline | None:
    """The study's stored baseline, from its user attributes; None if it has none yet."""
    return Baseline.from_dict(user_attrs.get(BASELINE_ATTR))


def _painting_from_bytes(data: bytes, filename: str) -> np.ndarray:
    """Decode the stored painting exactly as ``tuner search`` decoded the file (:func:`nst.images.load_image`)."""
    from nst.images import load_image

    with tempfile.TemporaryDirectory(prefix="styletune-") as tmp:
        path = Path(tmp) / f"painting{Path(filename).suffix or '.png'}"
        path.write_bytes(data)
        return load_image(path)


def compute_baseline(record: dict[str, Any], url: str, artifacts: str | None = None) -> tuple[Baseline, list, np.ndarray]:
    """Paint the study's test photos with the arbitrary network and score them with the study's judge.

    Returns the record (without artifact ids), the results and their contact sheet. The
    photos and the painting are read back from the study's artifacts, so an old study is
    measured on exactly the pictures its trials were judged on; the transformer paints at
    its default working size (long side 384, :func:`nst.arbitrary.stylize`), as
    ``tuner preview`` would, and the result is resized back to the proxy size.
    """
    import time

    from nst import arbitrary
    from nst.errors import ConfigError
    from nst.images import contact_sheet
    from nst.judge import Judge, JudgeSpec
    from tuner.reader import read_artifact, read_image_artifact

    started = time.perf_counter()
    try:
        spec = JudgeSpec.from_dict(record["judge"])
    except (ConfigError, KeyError, TypeError, AttributeError):
        judge = record.get("judge") if isinstance(record.get("judge"), dict) else {}
        raise BaselineUnavailable(f"the study was judged by {judge.get('name', '?')} v{judge.get('version', '?')}, "
                                  "which this styletune cannot rebuild; a baseline scored by another judge would "
                                  "not be comparable with its trials") from None
    names = list(record["content_names"])
    photos = np.stack([read_image_artifact(url, record["content_artifacts"][n], artifacts) for n in names])
    painting = _painting_from_bytes(read_artifact(url, record["style_artifact"], artifacts),
                                    record.get("style_file") or "painting.png")
    try:
        vector = arbitrary.style_vector(painting)
    except StyletuneError as exc:
        raise BaselineUnavailable(str(exc)) from None
    results = np.stack([arbitrary.stylize(p, vector) for p in photos])
    try:
        judged = Judge(spec, photos, painting).score(results)
    except StyletuneError as exc:  # the judge network's weights are missing here
        raise BaselineUnavailable(str(exc)) from None
    means = judged.means()
    per_photo = {n: {"style": float(a), "content": float(b), "noise": float(c)}
                 for n, a, b, c in zip(names, judged.style, judged.content, judged.noise, strict=True)}
    side = photos.shape[1]
    sheet = contact_sheet([list(photos), list(results)], cell=max(64, min(side, 256)))
    baseline = Baseline(scores=means, per_photo=per_photo, artifacts={},
                        feasible=bool(means["noise"] <= spec.noise_limit), side=arbitrary.CONTENT_SIZE,
                        seconds=round(time.perf_counter() - started, 2))
    return baseline, list(results), sheet


_baseline_lock = threading.Lock()


def ensure_baseline(study, url: str, artifacts: str | None = None) -> Baseline:
    """The study's baseline, computed and stored the first time it is asked for.

    ``tuner show`` and the dashboard call this, so a study made before the baseline existed
    gets it the first time it is viewed. A failure stores nothing and raises
    :class:`BaselineUnavailable` (or the storage's own one-line error).
    """
    from tuner.reader import study_record

    existing = read_baseline(study.user_attrs)
    if existing is not None:
        return existing
    with _baseline_lock:  # one computation per process (the dashboard serves several sessions)
        existing = read_baseline(study.user_attrs)
        if existing is not None:
            return existing
        record = study_record(study)
        baseline, results, sheet = compute_baseline(record, url, artifacts)
        store = atomic_store(artifact_dir(url, artifacts))
        ids = {name: upload_bytes(store, study, png_bytes(img), f"baseline-{name}.png", "image/png")
               for name, img in zip(record["content_names"], results, strict=True)}
        ids["sheet"] = upload_bytes(store, study, png_bytes(sheet), "baseline-sheet.png", "image/png")
        from dataclasses import replace

        baseline = replace(baseline, artifacts=ids)
        study.set_user_attr(BASELINE_ATTR, baseline.to_dict())
        return baseline
