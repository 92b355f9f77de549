"""Build study databases shaped exactly like the ones ``tuner search`` writes, for tests and benchmarks.

The dashboard reads the storage contract of :mod:`tuner.records`; these helpers write
that contract with Optuna's public API only (``create_study``, ``ask``/``tell``,
``set_user_attr``, ``optuna.artifacts.upload_artifact``), so the dashboard tests do not
depend on the tuner's own search code and fail if the dashboard relies on anything the
contract does not promise.

Two ways to make the trial images:

* ``render="blend"`` (the default, instant): each result mixes the photo with the
  painting's texture, more strongly for larger style weights, so the pictures differ
  from trial to trial the way real results do.
* ``render="gatys"``: real Gatys runs (:func:`nst.gatys.stylize`) with each trial's
  config, on the ``tiny`` network for tests or ``vgg16_hed`` for documentation
  screenshots.

Scores are computed from the pictures with a small pixel-space judge (colour statistics
for style, SSIM for content, total variation for noise), normalised so 0 is ideal and 1
is "no better than the unchanged photo", which is the contract's convention.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nst.config import StyleConfig
from nst.images import contact_sheet, resize_longest, save_image
from nst.testing import TINY_CONFIG, synthetic_painting, synthetic_photo

#: The two networks the fixture studies draw configs from (the filter in the trials table
#: needs more than one). Neither is run in ``blend`` mode.
FIXTURE_NETWORKS = ("vgg16_hed", "tiny")
#: The fixture judge's noise limit (``tuner search``'s default): noisier trials are infeasible.
NOISE_LIMIT = 1.5


def _config_for(network: str, style_weight: float, tv_weight: float, style_scale: float, init: str) -> StyleConfig:
    base = TINY_CONFIG if network == "tiny" else StyleConfig(network=network)
    return base.replace(style_weight=style_weight, tv_weight=tv_weight, style_scale=style_scale, init=init)


def _gram(img: np.ndarray) -> np.ndarray:
    flat = img.reshape(-1, 3).astype(np.float64)
    return flat.T @ flat / flat.shape[0]


def _tv(img: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(img, axis=0))) + np.mean(np.abs(np.diff(img, axis=1))))


def fixture_scores(photo: np.ndarray, result: np.ndarray, painting: np.ndarray) -> dict[str, float]:
    """A cheap pixel-space judge: 0 = ideal, 1 = no better than leaving the photo unchanged."""
    from skimage.metrics import structural_similarity

    target = _gram(resize_longest(painting, max(photo.shape[:2])))
    style = float(np.linalg.norm(_gram(result) - target) / max(np.linalg.norm(_gram(photo) - target), 1e-9))
    ssim = structural_similarity(photo, result, channel_axis=-1, data_range=1.0)
    content = float(1.0 - ssim)
    noise = (_tv(result) / max(_tv(photo), 1e-9) - 1.0) / 10.0
    return {"style": round(min(style, 2.0), 4), "content": round(min(content, 2.0), 4),
            "noise": round(float(np.clip(noise, 0.0, 2.0)), 4)}


def _blend(photo: np.ndarray, painting: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """A stand-in 'stylisation': the painting's texture tiled over the photo, mixed by ``strength``."""
    h, w = photo.shape[:2]
    reps = (math.ceil(h / painting.shape[0]), math.ceil(w / painting.shape[1]), 1)
    texture = np.tile(painting, reps)[:h, :w]
    texture = np.roll(texture, seed * 7, axis=1)
    luminance = photo.mean(axis=-1, keepdims=True)
    styled = 0.55 * texture + 0.45 * luminance * texture.mean(axis=(0, 1)) * 2
    return np.clip((1 - strength) * photo + strength * styled, 0, 1).astype(np.float32)


def _write_png(folder: Path, name: str, img: np.ndarray) -> str:
    return str(save_image(folder / f"{name}.png", img))


def make_study(
    url: str,
    name: str = "fixture",
    *,
    painting: np.ndarray | None = None,
    photos: dict[str, np.ndarray] | None = None,
    n_complete: int = 6,
    n_pruned: int = 1,
    n_fail: int = 1,
    n_running: int = 0,
    render: str = "blend",
    steps: int = 20,
    networks: Sequence[str] = FIXTURE_NETWORKS,
    chosen: int | None = None,
    seed: int = 0,
    progress: bool = False,
    style_weight_range: tuple[float, float] = (1e-4, 1.0),
    judge: dict | None = None,
    baseline: bool = False,
    artifacts: str | os.PathLike[str] | None = None,
    view_size: int | None = None,
) -> str:
    """Create (or extend) study ``name`` in ``url`` following the tuner.records contract; return the URL.

    Trials are created in order: ``n_complete`` finished ones, then pruned, failed and
    (left open, as a live search would) running ones. ``chosen`` records that trial
    number as the person's pick. ``judge`` is the judge record stored in the study
    (default: the fixture's pixel judge, which :func:`tuner.baseline.ensure_baseline` cannot
    rebuild; pass ``JudgeSpec.for_network("tiny").to_dict()`` for one it can).
    ``baseline`` stores an off-the-shelf baseline: the real arbitrary network's pictures
    (:mod:`nst.arbitrary`, about a second) scored by the fixture's pixel judge.
    ``artifacts`` is the artifact folder (``tuner search --artifacts``; default beside the
    SQLite file); like ``tuner search``, the study records it. ``view_size`` stores the test
    photos and every finished trial's pictures at that size too, as a network-proxy study
    does (the fixture's pictures enlarged).
    """
    import optuna
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    from tuner import records
    from tuner.reader import CHOSEN_ATTR, artifact_dir, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    painting = synthetic_painting(64, seed=seed + 1) if painting is None else painting
    photos = photos or {f"photo{i}": synthetic_photo(48, seed=seed + i) for i in range(2)}
    storage = open_storage(url, create=True)
    adir = artifact_dir(url, artifacts)
    adir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(adir))
    study = optuna.create_study(study_name=name, storage=storage, directions=["minimize", "minimize"],
                                load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=seed))
    tmp = Path(tempfile.mkdtemp(prefix="studyfactory-"))
    names = list(photos)

    if records.StudyRecord.from_user_attrs(study.user_attrs) is None:
        import hashlib

        style_file = _write_png(tmp, "painting", painting)
        style_id = upload_artifact(artifact_store=store, file_path=style_file, study_or_trial=study, mimetype="image/png")
        content_ids = {n: upload_artifact(artifact_store=store, file_path=_write_png(tmp, n, photos[n]),
                                          study_or_trial=study, mimetype="image/png") for n in names}
        record = records.StudyRecord(
            style_name=name, style_sha256=hashlib.sha256(Path(style_file).read_bytes()).hexdigest(),
            style_artifact=style_id, content_names=tuple(names), content_artifacts=content_ids,
            proxy_size=int(max(next(iter(photos.values())).shape[:2])), steps=steps,
            judge=judge or {"name": "fixture-pixels", "version": 1}, objectives=("style", "content"),
            style_file="painting.png", artifact_folder=str(adir.resolve()), view_size=view_size,
            content_view_artifacts={n: upload_artifact(artifact_store=store, study_or_trial=study, mimetype="image/png",
                                                       file_path=_write_png(tmp, f"{n}-view", _view(photos[n], view_size)))
                                    for n in names} if view_size else {})
        for key, value in record.to_user_attrs().items():
            study.set_user_attr(key, value)
    if baseline and records.read_baseline(study.user_attrs) is None:
        _store_baseline(study, store, tmp, painting, photos)

    def ask():
        trial = study.ask()
        network = trial.suggest_categorical("network", list(networks))
        sw = trial.suggest_float("style_weight", *style_weight_range, log=True)
        tv = trial.suggest_float("tv_weight", 1e-2, 1e2, log=True)
        scale = trial.suggest_float("style_scale", 0.5, 2.0)
        init = trial.suggest_categorical("init", ["content", "mixed"])
        return trial, _config_for(network, sw, tv, scale, init)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_complete, desc=f"study {name}", unit="trial")
    for _ in range(n_complete):
        trial, config = ask()
        batch = np.stack([photos[n] for n in names])
        if render == "gatys":
            from nst.gatys import stylize

            result = stylize(batch, painting, config, steps=steps)
            images, curve = list(result.images), [float(v) for v in result.history]
        else:
            lo, hi = (math.log10(v) for v in style_weight_range)
            strength = float(np.clip(0.1 + 0.8 * (math.log10(config.style_weight) - lo) / (hi - lo), 0.05, 0.95))
            images = [_blend(p, painting, strength, trial.number) for p in batch]
            curve = [float(100 * math.exp(-k / 6) + 5 * strength) for k in range(steps)]
        per_photo = [fixture_scores(p, r, painting) for p, r in zip(batch, images, strict=True)]
        scores = {k: round(float(np.mean([s[k] for s in per_photo])), 4) for k in ("style", "content", "noise")}
        ids = {}
        for n, img in zip(names, images, strict=True):
            ids[n] = upload_artifact(artifact_store=store, file_path=_write_png(tmp, f"t{trial.number}-{n}", img),
                                     study_or_trial=trial, mimetype="image/png")
        sheet = contact_sheet([list(batch), images], cell=96)
        ids["sheet"] = upload_artifact(artifact_store=store, file_path=_write_png(tmp, f"t{trial.number}-sheet", sheet),
                                       study_or_trial=trial, mimetype="image/png")
        trial.set_user_attr(records.CONFIG_ATTR, json.loads(config.to_json()))
        trial.set_user_attr(records.SCORES_ATTR, scores)
        trial.set_user_attr(records.CURVE_ATTR, curve)
        trial.set_user_attr(records.ARTIFACTS_ATTR, ids)
        if view_size:
            views = {n: upload_artifact(artifact_store=store, study_or_trial=trial, mimetype="image/png",
                                        file_path=_write_png(tmp, f"t{trial.number}-{n}-view", _view(img, view_size)))
                     for n, img in zip(names, images, strict=True)}
            views[records.SHEET] = upload_artifact(
                artifact_store=store, study_or_trial=trial, mimetype="image/png",
                file_path=_write_png(tmp, f"t{trial.number}-view-sheet",
                                     contact_sheet([[_view(p, view_size) for p in batch],
                                                    [_view(i, view_size) for i in images]], cell=view_size)))
            trial.set_user_attr(records.VIEW_ARTIFACTS_ATTR, views)
        trial.set_user_attr(records.FEASIBLE_ATTR, scores["noise"] <= NOISE_LIMIT)
        trial.set_constraint("noise", scores["noise"] - NOISE_LIMIT)  # as the objective does
        study.tell(trial, [scores["style"], scores["content"]])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for _ in range(n_pruned):
        trial, _config = ask()
        trial.set_user_attr(records.CURVE_ATTR, [float(v) for v in 50 * rng.random(5)])
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    for _ in range(n_fail):
        trial, _config = ask()
        trial.set_user_attr(records.FAIL_REASON_ATTR, "loss became nan at step 3")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    for _ in range(n_running):
        ask()
    if chosen is not None:
        study.set_user_attr(CHOSEN_ATTR, chosen)
    return url


def _view(img: np.ndarray, side: int) -> np.ndarray:
    from nst.images import resize_longest

    return resize_longest(img, side)


def _store_baseline(study, store, tmp: Path, painting: np.ndarray, photos: dict[str, np.ndarray]) -> None:
    """The baseline record ``tuner show`` stores, with the real network's pictures and the fixture's judge."""
    from optuna.artifacts import upload_artifact

    from nst import arbitrary
    from tuner.records import BASELINE_ATTR, Baseline

    vector = arbitrary.style_vector(painting)
    per_photo, ids, results = {}, {}, []
    for n, photo in photos.items():
        result = arbitrary.stylize(photo, vector)
        results.append(result)
        per_photo[n] = fixture_scores(photo, result, painting)
        ids[n] = upload_artifact(artifact_store=store, file_path=_write_png(tmp, f"baseline-{n}", result),
                                 study_or_trial=study, mimetype="image/png")
    sheet = contact_sheet([list(photos.values()), results], cell=96)
    ids["sheet"] = upload_artifact(artifact_store=store, file_path=_write_png(tmp, "baseline-sheet", sheet),
                                   study_or_trial=study, mimetype="image/png")
    scores = {k: round(float(np.mean([s[k] for s in per_photo.values()])), 4) for k in ("style", "content", "noise")}
    record = Baseline(scores=scores, per_photo=per_photo, artifacts=ids, feasible=True, side=arbitrary.CONTENT_SIZE,
                      seconds=1.0)
    study.set_user_attr(BASELINE_ATTR, record.to_dict())


def make_run(runs_dir: Path, name: str, *, study: str = "fixture", trial: int = 0, steps: int = 40,
             previews: int = 3, partial: bool = False, size: int = 48,
             photos: Sequence[str] = ("photo0", "photo1")) -> Path:
    """A training-run folder laid out as ``trainer fit`` writes it (see trainer/runs.py and trainer/fit.py).

    ``partial`` imitates a run that is still training (or crashed): no results or
    scores yet, and a last metrics line cut off mid-write.
    """
    folder = runs_dir / name
    (folder / "previews").mkdir(parents=True, exist_ok=True)
    config = TINY_CONFIG.replace(style_weight=0.05)
    gatys = {"style": 0.38, "content": 0.27, "noise": 0.04}
    (folder / "run.json").write_text(json.dumps({
        "version": 1, "name": name, "created": "2026-01-01T12:00:00+00:00",
        "settings": {"size": size, "steps": steps, "batch": 2, "preview_every": max(1, steps // previews)},
        "style_config": json.loads(config.to_json()),
        "source": {"kind": "study", "spec": f"{study}:{trial}", "study": study, "trial": trial,
                   "storage": "sqlite:///studies/studies.db", "gatys_scores": gatys},
        "preview_photos": list(photos),
    }))
    with open(folder / "metrics.jsonl", "w") as fh:
        for step in range(1, steps + 1):
            fh.write(json.dumps({"step": step, "loss": 10 * math.exp(-step / 15) + 1, "content": 2 * math.exp(-step / 30),
                                 "style": 8 * math.exp(-step / 10), "tv": 0.1, "img_per_s": 3.2, "seconds": 0.6,
                                 "time": 1.7e9 + step}) + "\n")
        if partial:
            fh.write('{"step": 99, "loss": ')  # a line cut off by a crash or a live writer
    painting = synthetic_painting(64)
    originals = [synthetic_photo(size, seed=k) for k in range(len(photos))]
    for photo, img in zip(photos, originals, strict=True):
        save_image(folder / "preview_photos" / f"{photo}.png", img)
    for k in range(previews):
        step = (k + 1) * steps // previews
        results = [_blend(p, painting, 0.2 + 0.2 * k, j) for j, p in enumerate(originals)]
        save_image(folder / "previews" / f"step_{step:06d}.png", contact_sheet([originals, results], cell=size))
    if not partial:
        (folder / "results").mkdir(exist_ok=True)
        per_photo = {}
        for k, photo in enumerate(photos):
            save_image(folder / "results" / f"{photo}.png", _blend(originals[k], painting, 0.5, k))
            per_photo[photo] = {"style": 0.4 + 0.04 * k, "content": 0.3 + 0.02 * k, "noise": 0.05}
        (folder / "scores.json").write_text(json.dumps({
            "step": steps, "size": size, "gatys": gatys, "trained": {"style": 0.42, "content": 0.31, "noise": 0.05},
            "judge": "fixture-pixels v1 (tiny)", "per_photo": per_photo,
        }))
    return folder


def make_demo_study(url: str, name: str = "starry_night", *, trials: int = 10, size: int = 112, steps: int = 25,
                    painting: str = "examples/starry_night.jpg") -> str:
    """A small real study for screenshots: vgg16_hed Gatys runs on scikit-image's photos (minutes on a CPU)."""
    from nst.images import bundled_photos, center_crop_square, load_image

    photos = {n: center_crop_square(load_image(p, max_side=2 * size), size)
              for n, p in bundled_photos().items() if n in ("astronaut", "chelsea", "coffee")}
    return make_study(url, name, painting=load_image(painting, max_side=256), photos=photos, n_complete=trials,
                      n_pruned=2, n_fail=1, render="gatys", steps=steps, networks=("vgg16_hed",), progress=True,
                      style_weight_range=(1e-5, 1e-1), seed=3)
