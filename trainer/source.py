"""Where a training run's loss comes from: a study's trial (through :mod:`tuner.reader`) or a config file.

The trainer reads studies only through the tuner's public reader and its records, so a
run describes its source (study, trial, storage, judge, the trial's Gatys scores) without
the trainer knowing how the tuner stores anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def resolve_source(*, from_study: str | None, storage: str, artifacts: str | None, config: str | None,
                   style: str | None, preview: Sequence[str] | None) -> dict[str, Any]:
    """Config, painting bytes, source record and preview photos, from a study trial or a config file.

    ``from_study`` is ``best``, ``STUDY`` or ``STUDY:TRIAL`` (:func:`tuner.reader.resolve`);
    otherwise ``config`` (a StyleConfig JSON file) and ``style`` (the painting) are needed.
    ``preview``: photos to preview on with a config (default: scikit-image's bundled ones).
    ``baseline_note``: from a study where no trial beats the off-the-shelf baseline, the one
    line that says so (:func:`tuner.reader.baseline_note`), else None.
    """
    from nst.config import StyleConfig
    from nst.errors import StyletuneError
    from nst.images import bundled_photos, load_image
    from tuner.reader import safe_name

    if from_study:
        from tuner import reader

        resolved = reader.resolve(from_study, storage, artifacts)
        rec = resolved.record
        style_bytes = reader.read_artifact(storage, rec.style_artifact, resolved.artifacts)
        photos = {}
        # a study that paints at a side larger than its proxy size keeps its test photos at the view
        # size too: previews are made from those, so the network paints them sharp at its work side
        views = rec.content_view_artifacts if rec.paint_side or rec.judges_view else {}
        for name, artifact in rec.content_artifacts.items():
            reader.check_name(name, "test photo name")
            photos[name] = reader.read_image_artifact(storage, views.get(name, artifact), resolved.artifacts)
        study = reader.load_study(reader.open_storage(storage), resolved.study_name)
        gatys = reader.trial_record(study, resolved.trial_number).scores
        source = {"kind": "study", "spec": from_study, "study": resolved.study_name,
                  "trial": resolved.trial_number, "storage": storage, "artifacts": artifacts,
                  "style_name": rec.style_name, "style_sha256": resolved.style_sha256,
                  "judge": rec.judge or None, "proxy_size": rec.proxy_size,
                  "gatys_scores": gatys or None, "proxy": rec.proxy_run}
        return {"config": resolved.config, "style_bytes": style_bytes, "style_suffix": ".png",
                "source": source, "photos": photos, "default_name": f"{resolved.study_name}-t{resolved.trial_number}",
                "baseline_note": reader.baseline_note(study)}
    if not config or not style:
        raise StyletuneError("say where the loss comes from: --from-study best|STUDY|STUDY:TRIAL, "
                             "or --config cfg.json together with --style PAINTING")
    loaded = StyleConfig.load(config)
    load_image(style)  # refuses a broken painting with a one-line reason
    style_path = Path(style)
    photo_paths = [Path(p) for p in preview] if preview else list(bundled_photos().values())
    photos = {}
    for p in photo_paths:
        photos[p.stem] = load_image(p, max_side=1024)
    source = {"kind": "config", "spec": f"{config}|{style}", "config_file": str(Path(config).resolve()),
              "style_file": str(style_path.resolve()), "study": None, "trial": None, "storage": None, "judge": None,
              "gatys_scores": None}
    return {"config": loaded, "style_bytes": style_path.read_bytes(), "style_suffix": style_path.suffix or ".png",
            "source": source, "photos": photos, "default_name": safe_name(style_path.stem, "style"),
            "baseline_note": None}
