"""Scoring a finished run's results with the study's judge, beside the proxy's (Gatys) scores.

:meth:`trainer.fit.Trainer.finish` calls :func:`score_results`; ``bench/inference_speed.py``
calls :func:`judge_results` on its own results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from trainer.runs import RunFolder, RunRecord, write_json
from trainer.settings import preview_side_of


def judge_results(judge_record: Mapping[str, Any] | None, photos: Mapping[str, np.ndarray],
                  results: Mapping[str, np.ndarray], style: np.ndarray) -> tuple[dict[str, dict[str, float]], str]:
    """Per-photo judge scores of ``results``, with the study's judge (:mod:`nst.judge`).

    ``judge_record`` is the study's recorded judge spec; without a study (``--config``)
    the default judge is used. Each photo is judged on its own, so photos of different
    shapes need no cropping.
    """
    from nst.judge import Judge, JudgeSpec

    spec = JudgeSpec.from_dict(dict(judge_record)) if judge_record else JudgeSpec()
    per_photo = {}
    for name, photo in photos.items():
        scores = Judge(spec, photo[None], style).score(results[name][None])
        per_photo[name] = {"style": float(scores.style[0]), "content": float(scores.content[0]),
                           "noise": float(scores.noise[0]),
                           **{k: float(v[0]) for k, v in scores.parts.items()}}
    return per_photo, f"{spec.name} v{spec.version} ({spec.network})"


def judged_at_view(info: RunRecord) -> bool:
    """Whether the run's source study scored its trials on their view-size pictures, so the run's results are
    painted and judged there too (unless ``--preview-size`` asked for another size)."""
    return (info.source.get("proxy") or {}).get("judged_at") == "view" and not info.settings.get("preview_size")


def score_results(run: RunFolder, info: RunRecord, photos: Mapping[str, np.ndarray],
                  results: Mapping[str, np.ndarray], style: np.ndarray, step: int) -> dict[str, Any]:
    """Score the results with the study's judge and write ``scores.json`` beside the proxy's scores.

    ``scores.json`` holds ``{"trained": {...}, "gatys": {...}, ...}`` (means over the test
    photos, the Gatys ones as the study recorded them for the trial): the dashboard shows
    the two side by side. A judge that cannot run here (another judge version, missing
    weights) leaves a ``note`` saying why instead of failing the finished training. A run
    that paints at a study's paint side is judged as the study judged its trials: at the view
    size when the study judged there, else the pictures and photos shrunk to the proxy size
    (``size`` in ``scores.json``).
    """
    source = info.source
    out: dict[str, Any] = {"step": step, "size": preview_side_of(info.settings)}
    proxy_size = source.get("proxy_size")
    if judged_at_view(info):
        # the study scored its trials on their view-size pictures: so are these (Trainer.finish paints them there)
        out["size"] = max(max(p.shape[:2]) for p in photos.values()) if photos else out["size"]
    elif info.settings.get("scale_side") and proxy_size and not info.settings.get("preview_size"):
        # painted at the study's paint side, judged as its trials were: shrunk to the proxy size
        from nst.images import resize_longest

        photos = {n: resize_longest(p, int(proxy_size)) for n, p in photos.items()}
        results = {n: resize_longest(results[n], int(proxy_size)) for n in photos}
        out["size"] = int(proxy_size)
    gatys = source.get("gatys_scores")
    if isinstance(gatys, dict):
        out["gatys"] = gatys
    try:
        per_photo, judge_name = judge_results(source.get("judge"), photos, results, style)
    except StyletuneError as exc:
        out["note"] = f"results not scored: {exc}"
    else:
        if not per_photo:
            out["note"] = "results not scored: the run has no test photos"
            write_json(run.scores_file, out)
            return out
        keys = ("style", "content", "noise")
        out["trained"] = {k: round(float(np.mean([p[k] for p in per_photo.values()])), 4) for k in keys}
        out["judge"] = judge_name
        out["per_photo"] = per_photo
    write_json(run.scores_file, out)
    return out
