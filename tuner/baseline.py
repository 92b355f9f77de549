"""A study's off-the-shelf baseline: Magenta's arbitrary network on the test photos, scored by the study's judge.

Computed the first time ``tuner show`` or the dashboard asks for it, and stored with the
study (user attribute ``baseline``, pictures as artifacts); :mod:`tuner.study` makes and
checks the study itself.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from tuner.artifacts import atomic_store, png_bytes, upload_bytes
from tuner.reader import artifact_dir
from tuner.records import BASELINE_ATTR, Baseline, TrialRecord, read_baseline  # noqa: F401 - read here, and by the dashboard from here


class BaselineUnavailable(StyletuneError):
    """The baseline cannot be computed here (model or judge weights missing, judge changed)."""


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
    from nst.judge import JudgeSpec
    from tuner.reader import read_artifact, read_image_artifact

    started = time.perf_counter()
    try:
        spec = JudgeSpec.from_dict(record["judge"])
    except (ConfigError, KeyError, TypeError, AttributeError):
        judge = record.get("judge") if isinstance(record.get("judge"), dict) else {}
        raise BaselineUnavailable(f"the study was judged by {judge.get('name', '?')} v{judge.get('version', '?')}, "
                                  "which this styletune cannot rebuild; a baseline scored by another judge would "
                                  "not be comparable with its trials") from None
    folder = artifact_dir(url, artifacts, record.get("artifact_folder"))
    names = list(record["content_names"])
    photos = np.stack([read_image_artifact(url, record["content_artifacts"][n], folder) for n in names])
    painting = _painting_from_bytes(read_artifact(url, record["style_artifact"], folder),
                                    record.get("style_file") or "painting.png")
    try:
        vector = arbitrary.style_vector(painting)
    except StyletuneError as exc:
        raise BaselineUnavailable(str(exc)) from None
    results = np.stack([arbitrary.stylize(p, vector) for p in photos])
    try:
        judged = _judged(spec, names, photos, painting, results)
    except StyletuneError as exc:  # the judge network's weights are missing here
        raise BaselineUnavailable(str(exc)) from None
    side = photos.shape[1]
    sheet = contact_sheet([list(photos), list(results)], cell=max(64, min(side, 256)))
    baseline = Baseline(**judged, artifacts={}, side=arbitrary.CONTENT_SIZE,
                        seconds=round(time.perf_counter() - started, 2))
    return baseline, list(results), sheet


def _judged(spec, names: list[str], photos: np.ndarray, painting: np.ndarray, results: np.ndarray) -> dict[str, Any]:
    """The baseline's judge fields for ``results`` of ``photos``: ``scores``, ``per_photo`` and ``feasible``."""
    from nst.judge import Judge

    judged = Judge(spec, photos, painting).score(results)
    means = judged.means()
    return {"scores": means, "per_photo": judged.per_photo(names), "feasible": bool(means["noise"] <= spec.noise_limit)}


def _view_baseline(record: dict[str, Any], url: str, artifacts: str | None, store, study,
                   baseline: Baseline) -> Baseline:
    """``baseline`` with the arbitrary network's pictures of the study's view-size photos (as ``tuner preview``
    paints them) stored; when the study judges its trials at the view size, scored there too, as they are."""
    from dataclasses import replace

    from nst import arbitrary
    from nst.images import contact_sheet
    from nst.judge import JudgeSpec
    from tuner.reader import read_artifact, read_image_artifact

    views = record.get("content_view_artifacts") or {}
    names = [n for n in record["content_names"] if n in views]
    if not names:
        return baseline
    folder = artifact_dir(url, artifacts, record.get("artifact_folder"))
    photos = [read_image_artifact(url, views[n], folder) for n in names]
    painting = _painting_from_bytes(read_artifact(url, record["style_artifact"], folder),
                                    record.get("style_file") or "painting.png")
    vector = arbitrary.style_vector(painting)
    results = [arbitrary.stylize(p, vector) for p in photos]
    ids = {n: upload_bytes(store, study, png_bytes(img), f"baseline-{n}-view.png", "image/png")
           for n, img in zip(names, results, strict=True)}
    sheet = contact_sheet([photos, results], cell=256)
    ids["sheet"] = upload_bytes(store, study, png_bytes(sheet), "baseline-view-sheet.png", "image/png")
    baseline = replace(baseline, view_artifacts=ids)
    if not _judges_view(record):
        return baseline
    judged = _judged(JudgeSpec.from_dict(record["judge"]), names, np.stack(photos), painting, np.stack(results))
    return replace(baseline, **judged, judged_at="view")


def _judges_view(record: dict[str, Any]) -> bool:
    from tuner.records import STUDY_ATTR, StudyRecord

    rec = StudyRecord.from_user_attrs({STUDY_ATTR: record}) if record else None
    return bool(rec and rec.judges_view)


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
        store = atomic_store(artifact_dir(url, artifacts, record.get("artifact_folder")))
        ids = {name: upload_bytes(store, study, png_bytes(img), f"baseline-{name}.png", "image/png")
               for name, img in zip(record["content_names"], results, strict=True)}
        ids["sheet"] = upload_bytes(store, study, png_bytes(sheet), "baseline-sheet.png", "image/png")
        from dataclasses import replace

        baseline = _view_baseline(record, url, artifacts, store, study, replace(baseline, artifacts=ids))
        study.set_user_attr(BASELINE_ATTR, baseline.to_dict())
        return baseline
