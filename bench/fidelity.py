"""Fidelity: does the trained network look like the proxy render the person picked?

The person picks a trial by looking at its proxy renders; ``trainer fit`` then
trains a network with that trial's loss. The pick means something only if the network's
results score like the proxy's (DESIGN.md: within +-0.10 on style and content, and the
same ranking across trials). This bench measures it on one real study:

1. take ``--trials`` trials spread along the study's Pareto front (style against content
   score; further non-dominated layers fill in when the front is short), plus the
   default StyleConfig, whose proxy is rendered here with the study's size and steps;
2. train a network for each with one stated recipe (``--network --size --batch --steps
   --lr``) on ``--data`` (default ``studies/photos``, from ``make photos``), which must
   not contain the study's test photos. By default it is the recipe ``trainer fit
   --from-study`` gives the study's trials: Magenta's network, its normalisation layers
   (and the photo blend when the study's proxy has it), batch 4 at 128 px, the proxy's
   steps and learning rate;
3. stylise the study's test photos (the network never saw them) at the proxy's size and
   judge them with the study's judge, in the same process as the proxy's stored renders,
   which are judged again so both columns come from one judge;
4. print proxy and network scores with their differences, Spearman's rho over the
   trials for style and content, and reference rows (Magenta's arbitrary model as
   shipped, and the network before training when it is pretrained); write a contact
   sheet, one row per trial: photo | proxy | network, for every test photo.

Usage::

    make photos                                   # studies/photos, the default --data
    python -m bench.fidelity --storage sqlite:///studies/fidelity.db --study monet --out bench_out/fidelity
    python -m bench.fidelity ... --steps 200     # longer; the rate is spread as trainer fit spreads it
    python -m bench.fidelity ... --network fast --steps 400 --lr 1e-3   # from scratch
    python -m bench.fidelity --storage sqlite:///studies/gatys.db --study monet --recipe paper   # a GPU's job:
        # a Gatys study's trials against networks from random weights, the paper's recipe (docs/trainer.md)

Runs one network after another; each run folder lands in ``OUT/runs`` and the table in
``OUT/fidelity.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import require_trials, trial_numbers
from bench.fidelity_stats import Row, format_report, spread_along_front, summarise
from trainer.recipe import RECIPES
from tuner.records import StudyRecord, trial_records

#: Training photos when --data is not given: the folder `make photos` writes (docs/photos.md).
DEFAULT_DATA = "studies/photos"
#: Steps and rate for a study whose proxy sets none (a Gatys study).
FALLBACK_STEPS, FALLBACK_LR = 100, 1e-3

SCORES = ("style", "content", "noise")


def study_judge(record: StudyRecord, log=print):
    """The study's recorded judge; when this styletune's judge is a newer version, the same style network in it.

    Both columns are judged again here by one judge, so they stay comparable with each
    other even when they are not with the scores stored in an older study.
    """
    from nst.errors import ConfigError
    from nst.judge import JudgeSpec

    try:
        return JudgeSpec.from_dict(dict(record.judge))
    except ConfigError as exc:
        spec = JudgeSpec.for_network(record.judge.get("network", "vgg16_hed"))
        log(f"note: {exc}; judging both columns with version {spec.version} on {spec.network}")
        return spec


def render_proxy(batch: np.ndarray, painting: np.ndarray, config, steps: int, init: str,
                 proxy: dict[str, Any] | None = None, paint: np.ndarray | None = None) -> list[np.ndarray]:
    """The study's proxy as the tuner runs it (``proxy``: the study record's, Gatys when None).

    A network-proxy study (:mod:`nst.netproxy`) renders with the tuned network. For a
    Gatys study, ``init="magenta"`` starts the pixels from Magenta's result instead of the photo;
    ``"content"``, ``"noise"`` and ``"mixed"`` set the StyleConfig's ``init`` (the photo, as the tuner;
    uniform noise; half photo, half noise).

    A network proxy with a paint side tunes on crops of ``paint`` (the test photos at that
    side), as the tuner does, and its pictures are shrunk to the batch's size.

    Starting from Magenta's result, network and proxy start from the same
    picture (the magenta network at step 0 *is* that picture, at any size), so the
    proxy's content no longer comes for free from starting at the photo.
    """
    from nst.gatys import stylize

    if (proxy or {}).get("kind") == "network":
        from nst.config import PROXY_LR
        from nst.images import resize_each
        from nst.netproxy import tune_network

        kw = {"steps": steps, "lr": float(proxy.get("lr", PROXY_LR)), "blend": bool(proxy.get("blend", False))}
        if paint is None:
            return list(tune_network(batch, painting, config, **kw).images)
        return list(resize_each(tune_network(paint, painting, config, crop=batch.shape[1], **kw).images,
                                batch.shape[1:3]))
    start = None
    if init in ("content", "noise", "mixed"):
        config = config.replace(init=init)
    if init == "magenta":
        from nst.transformer import build_magenta, painting_vector, pretrained_weights

        model = build_magenta()
        pretrained_weights(model, painting_vector(painting))
        start = np.clip(model(batch.astype(np.float32)).numpy(), 0.0, 1.0)
    result = stylize(batch, painting, config, steps=steps, init_images=start)
    return list(result.images)


def loss_curve(run_dir: Path, points: int = 10) -> list[float]:
    """A run's training loss in ``points`` equal windows of its steps (mean of each), from ``metrics.jsonl``.

    Flat last windows say the network stopped learning at that recipe; a falling tail says it
    was still learning when the run ended."""
    from trainer.runs import RunFolder

    losses = [row["loss"] for row in RunFolder(run_dir).read_metrics() if math.isfinite(row.get("loss", math.nan))]
    if not losses:
        return []
    edges = np.linspace(0, len(losses), min(points, len(losses)) + 1).astype(int)
    return [round(float(np.mean(losses[a:b])), 4) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def judge_means(judge, images: Sequence[np.ndarray]) -> dict[str, float]:
    return {k: float(v) for k, v in judge.score(np.stack(images).astype(np.float32)).means().items() if k in SCORES}


def paint_side_photos(storage: str, artifacts: str | None, rec: StudyRecord, batch: np.ndarray) -> np.ndarray | None:
    """The test photos at the study's paint side (from its view-size photos), or None without a paint side."""
    from nst.images import resize
    from tuner import reader

    side = rec.paint_side
    if not side:
        return None
    views = rec.content_view_artifacts
    return np.stack([resize(reader.read_image_artifact(storage, views[n], artifacts), (side, side)) if n in views
                     else resize(batch[i], (side, side)) for i, n in enumerate(rec.content_names)])


def train_and_stylise(row: Row, *, painting_bytes: bytes, photos: dict[str, np.ndarray], data: str, runs_dir: Path,
                      name: str, settings: dict[str, Any], progress: bool) -> tuple[list[np.ndarray], list[np.ndarray], Any]:
    """Train one network with ``row.config``; its results on ``photos`` after training and before, and its painter.

    The painter is ``trainer stylize``'s (:class:`trainer.stylize.Stylizer`) on the trained weights."""
    from trainer.data import scan_photos
    from trainer.fit import Settings, Trainer, create_run
    from trainer.runs import RunFolder

    run = RunFolder(runs_dir / name)
    if not run.exists():
        side = max(next(iter(photos.values())).shape[:2])
        create_run(run, Settings(data=data, preview_size=side, preview_every=10**9, **settings), row.config,
                   style_bytes=painting_bytes, style_suffix=".png",
                   source={"kind": "bench", "spec": f"fidelity {row.label}", "study": None, "trial": None,
                           "storage": None, "judge": None},
                   photos=photos, scan=scan_photos(data, progress=False), command="bench.fidelity")
    trainer = Trainer(run, progress=progress)
    before = trainer.stylise_photos() if trainer.step == 0 else {}
    started = time.perf_counter()
    trainer.train()
    row.seconds = time.perf_counter() - started
    row.steps = trainer.step
    after = trainer.stylise_photos()
    names = list(photos)
    return [after[n] for n in names], [before[n] for n in names] if before else [], trainer._stylizer


# -- the whole bench ---------------------------------------------------------------------------


def study_recipe(proxy_run: dict[str, Any], settings: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """``settings`` completed as ``trainer fit --from-study`` completes them for a study's trials.

    ``proxy_run`` is the study's :attr:`tuner.records.StudyRecord.proxy_run`, the same
    record ``trainer fit`` matches its runs to.

    A network-proxy study gives a magenta norm-only run the proxy's steps and rate (the
    rate spread over typed ``--steps``) and its photo blend, unless typed (``explicit``);
    see :func:`trainer.recipe.proxy_matched_settings`. Steps and rate nothing sets fall
    back to :data:`FALLBACK_STEPS` and :data:`FALLBACK_LR`; checkpoints come once, at the end.
    """
    from trainer.recipe import proxy_matched_settings

    out = {"steps": FALLBACK_STEPS, "lr": FALLBACK_LR, **settings, **proxy_matched_settings(proxy_run, settings, explicit)}
    out["checkpoint_every"] = out.get("checkpoint_every") or max(1, int(out["steps"]))
    return out


def run_bench(storage: str, study_name: str, data: str, out: Path, *, trials: int = 5, settings: dict[str, Any],
              artifacts: str | None = None, default_config=None, judge_spec=None, magenta_reference: bool = True,
              proxy_init: str = "photo", proxy_steps: int | None = None, explicit: dict[str, Any] | None = None,
              pick: Sequence[int] = (),
              progress: bool = False, log=print) -> dict[str, Any]:
    """Everything above; returns the rows and correlations (also written to ``OUT/fidelity.json``).

    ``proxy_init`` other than ``photo`` renders every row's proxy again from that start,
    with ``proxy_steps`` L-BFGS steps (default: the study's).
    ``explicit`` holds the settings the user typed (default: all of ``settings``); the
    others follow the study's proxy as ``trainer fit --from-study`` would, and ``steps``
    and ``lr`` fall back to :data:`FALLBACK_STEPS` and :data:`FALLBACK_LR` when nothing sets them.
    """
    import optuna

    from nst.config import StyleConfig
    from nst.images import contact_sheet, resize_each, save_image
    from nst.judge import Judge
    from trainer.settings import work_side_of
    from tuner import reader

    study = reader.load_study(reader.open_storage(storage), study_name)
    rec = reader.read_record(study)
    names = list(rec.content_names)
    steps = proxy_steps or rec.steps or 50
    study_proxy = rec.proxy
    if study_proxy.get("kind") == "network" and proxy_init != "photo":
        raise SystemExit("--proxy-init is for Gatys studies; this study's proxy is the tuned network")
    log(f"study proxy: {study_proxy}")
    finished = {t.number: t for t in trial_records(study.get_trials(deepcopy=False,
                                                                    states=(optuna.trial.TrialState.COMPLETE,)))
                if t.scored and t.style_config}
    points = {n: (t.scores["style"], t.scores["content"]) for n, t in finished.items()}
    require_trials(pick, list(finished), prog="python -m bench.fidelity", flag="--pick", study=study_name)
    picked = list(pick) or spread_along_front(points, trials)
    log(f"study {study_name}: {len(finished)} finished trials; "
        + (f"picked by --pick: {picked}" if pick else f"picked along the front: {picked}"))

    settings = study_recipe(rec.proxy_run, settings, settings if explicit is None else explicit)
    photos = {n: reader.read_image_artifact(storage, rec.content_artifacts[n], artifacts) for n in names}
    painting_bytes = reader.read_artifact(storage, rec.style_artifact, artifacts)
    from nst.images import load_image

    out.mkdir(parents=True, exist_ok=True)
    painting_file = out / "painting.png"
    painting_file.write_bytes(painting_bytes)
    painting = load_image(painting_file)
    batch = np.stack([photos[n] for n in names]).astype(np.float32)
    spec = judge_spec or study_judge(rec, log)
    judge = Judge(spec, batch, painting)
    paint = paint_side_photos(storage, artifacts, rec, batch)
    # a paint-side study's network paints the photos there, and is judged shrunk, like its trials
    train_photos = photos if paint is None else dict(zip(names, paint, strict=True))

    rows: list[Row] = []
    proxy_seconds: dict[str, float] = {}  # each proxy rendered here: its wall time (all the test photos)
    for n in picked:
        t = finished[n]
        row = Row(f"trial {n}", StyleConfig.from_dict(t.style_config))
        if proxy_init == "photo":
            row.proxy_images = [reader.read_image_artifact(storage, t.artifacts[p], artifacts) for p in names]
        else:
            started = time.perf_counter()
            row.proxy_images = render_proxy(batch, painting, row.config, steps, proxy_init,
                                            study_proxy, paint)
            proxy_seconds[row.label] = time.perf_counter() - started
        row.proxy = judge_means(judge, row.proxy_images)
        rows.append(row)
    if default_config is None:
        default_config = StyleConfig()
    if default_config is not False:
        row = Row("default config", default_config)
        started = time.perf_counter()
        row.proxy_images = render_proxy(batch, painting, default_config, steps, proxy_init,
                                        study_proxy, paint)
        proxy_seconds[row.label] = time.perf_counter() - started
        row.proxy = judge_means(judge, row.proxy_images)
        rows.append(row)

    untrained: list[np.ndarray] = []
    painters: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        log(f"training {row.label} ({i + 1}/{len(rows)}): {settings}")
        label = row.label.replace(" ", "")
        row.network_images, before, painters[row.label] = train_and_stylise(
            row, painting_bytes=painting_bytes, photos=train_photos, data=data, runs_dir=out / "runs",
            name=f"{label}-{settings.get('arch', 'net')}", settings=settings, progress=progress)
        if paint is not None:  # judged at the test photos' size, as the tuner judges its trials
            row.network_images = list(resize_each(row.network_images, batch.shape[1:3]))
            before = list(resize_each(before, batch.shape[1:3]))
        row.network = judge_means(judge, row.network_images)
        curves[row.label] = loss_curve(out / "runs" / f"{label}-{settings.get('arch', 'net')}")
        untrained = untrained or before
        log(f"  {row.label}: {row.steps} steps in {row.seconds / 60:.1f} min; proxy {_fmt(row.proxy)}; "
            f"network {_fmt(row.network)}; loss by tenths {curves[row.label]}")

    references: list[tuple[str, dict[str, float], list[np.ndarray]]] = []
    if untrained:
        references.append(("network before training (step 0)", judge_means(judge, untrained), untrained))
    if magenta_reference:
        from nst.arbitrary import style_vector
        from nst.arbitrary import stylize as arbitrary

        vector = style_vector(painting)
        images = [arbitrary(photos[n], vector) for n in names]
        references.append(("Magenta arbitrary model as shipped (384 px and back)", judge_means(judge, images), images))

    summary = summarise(rows)
    table = format_report(rows, references, summary, {**settings, "proxy init": proxy_init, "proxy steps": steps})
    log(table)
    (out / "fidelity.md").write_text(table + "\n", encoding="utf-8")
    sheet_rows = []  # one row per trial: photo | proxy | network, for each test photo in turn
    for row in rows:
        sheet_rows.append([img for j in range(len(names))
                           for img in (batch[j], row.proxy_images[j], row.network_images[j])])
    for _label, _scores, images in references:  # photo | (no proxy: white) | reference result
        sheet_rows.append([img for j in range(len(names)) for img in (batch[j], np.ones_like(batch[j]), images[j])])
    sheet = save_image(out / "fidelity_sheet.png", contact_sheet(sheet_rows, cell=max(64, min(batch.shape[1], 160))))
    view = view_fidelity(storage, artifacts, rec, {n: finished[n] for n in picked}, painters, spec, painting,
                         work_side_of(settings) or rec.proxy_size or 128, out, log)
    result = {"study": study_name, "settings": settings, "view": view, "proxy_init": proxy_init, "proxy_steps": steps,
              "photos": names, "summary": summary, "sheet": str(sheet),
              "rows": [{"label": r.label, "proxy": r.proxy, "network": r.network, "steps": r.steps,
                        "minutes": round(r.seconds / 60, 2), "loss_curve": curves.get(r.label, []),
                        "proxy_seconds": round(proxy_seconds[r.label], 1) if r.label in proxy_seconds else None}
                       for r in rows],
              "references": [{"label": label, "network": scores} for label, scores, _ in references]}
    (out / "fidelity.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def view_fidelity(storage: str, artifacts: str | None, rec: StudyRecord, trials: dict[int, Any], painters: dict[str, Any],
                  spec, painting: np.ndarray, work_side: int, out: Path, log=print, view: int = 256) -> dict[str, Any] | None:
    """The view-size part (:mod:`bench.fidelity_view`) for the trials that stored view-size pictures; None without."""
    from bench.fidelity_view import ViewRow, format_view_report, judge_row, paint_sizes, summarise_view, view_sheet
    from nst.images import resize_longest, save_image
    from nst.judge import Judge
    from tuner import reader

    names = [n for n in rec.content_names if n in rec.content_view_artifacts]
    with_view = {n: t for n, t in trials.items() if all(p in t.view_artifacts for p in names)}
    if not names or not with_view:
        log("view size: the study stored no view-size pictures (a Gatys study, or one made before them); skipped")
        return None
    photos = [reader.read_image_artifact(storage, rec.content_view_artifacts[p], artifacts) for p in names]
    judge = Judge(spec, np.stack([resize_longest(p, view) for p in photos]).astype(np.float32), painting)
    rows = []
    for number, t in with_view.items():
        row = ViewRow(f"trial {number}", [reader.read_image_artifact(storage, t.view_artifacts[p], artifacts)
                                          for p in names])
        row.network = paint_sizes(painters[f"trial {number}"], photos, work_side)
        judge_row(row, judge, view)
        rows.append(row)
    summary = summarise_view(rows)
    table = format_view_report(rows, summary, view)
    log(table)
    (out / "fidelity_view.md").write_text(table + "\n", encoding="utf-8")
    sheet = save_image(out / "fidelity_view_sheet.png", view_sheet(rows))
    return {"summary": summary, "sheet": str(sheet),
            "rows": [{"label": r.label, "scores": r.scores, "strokes": r.strokes} for r in rows]}


def _fmt(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {scores[k]:.3f}" for k in SCORES if k in scores)


def bench_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training settings for ``args``, and which of steps and lr were set (typed, or by a named recipe).

    ``--recipe study`` leaves steps and rate to the study's proxy, as ``trainer fit
    --from-study`` does; a named recipe sets them, and typed flags override its values.
    """
    base: dict[str, Any] = {"arch": "magenta", "size": 128, "batch": 4, "width": 1.0}
    recipe = "bench"
    if args.recipe != "study":
        recipe = args.recipe
        base = {**base, **RECIPES[args.recipe].settings()}
        if args.recipe == "paper":
            base["checkpoint_every"] = 2000
    typed = {k: v for k, v in (("arch", args.network), ("size", args.size), ("batch", args.batch),
                               ("width", args.width), ("steps", args.steps), ("lr", args.lr),
                               ("checkpoint_every", args.checkpoint_every)) if v is not None}
    settings = {**base, **typed, "recipe": recipe, "seed": args.seed}
    settings["tune"] = args.tune or ("norm" if settings["arch"] == "magenta" else "all")
    return settings, {k: settings[k] for k in ("steps", "lr") if k in settings}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--artifacts")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help=f"training photos, not the study's test photos (default {DEFAULT_DATA}, made by `make photos`)")
    parser.add_argument("--out", default="bench_out/fidelity")
    parser.add_argument("--trials", type=int, default=5, help="trials along the Pareto front (default 5)")
    parser.add_argument("--pick", type=trial_numbers, default=(), metavar="N,N",
                        help="these trial numbers instead of --trials along the front")
    parser.add_argument("--recipe", choices=("study", *RECIPES), default="study",
                        help="study (default): what trainer fit --from-study gives a network-proxy study's trials on "
                             "a CPU (magenta, 128 px, batch 4); paper: Johnson et al. from random weights (johnson, "
                             "256 px, batch 4, 40000 steps, Adam 1e-3: a GPU's job, docs/trainer.md); cpu, gpu: "
                             "trainer fit's. Flags typed below override the recipe's values")
    parser.add_argument("--network", help="default: the recipe's")
    parser.add_argument("--size", type=int, help="training crop (default: the recipe's)")
    parser.add_argument("--batch", type=int, help="default: the recipe's (4 in every one)")
    parser.add_argument("--steps", type=int,
                        help=f"default: the study's proxy steps, as trainer fit --from-study (else {FALLBACK_STEPS})")
    parser.add_argument("--lr", type=float,
                        help=f"default: the study's proxy rate, as trainer fit --from-study (else {FALLBACK_LR:g})")
    parser.add_argument("--width", type=float, help="channel multiplier (default 1)")
    parser.add_argument("--checkpoint-every", type=int,
                        help="steps between checkpoints (default: once at the end, 2000 with --recipe paper); "
                             "the same command again resumes the runs")
    parser.add_argument("--tune", choices=("all", "norm"), help="default: norm for magenta, all otherwise")
    parser.add_argument("--seed", type=int, default=0,
                        help="the networks' data order (default 0); compare two seeds with python -m bench.fidelity_stats")
    parser.add_argument("--judge-network", help="judge with this style network instead of the study's")
    parser.add_argument("--proxy-init", choices=("photo", "content", "magenta", "noise", "mixed"), default="photo",
                        help="photo: the study's stored proxy renders; otherwise render each proxy again (Gatys-proxy "
                             "studies, timed): from the photo as the tuner does (content), from Magenta's result, "
                             "from noise, or from half photo, half noise")
    parser.add_argument("--proxy-steps", type=int, help="L-BFGS steps of a proxy rendered again (default: the study's)")
    parser.add_argument("--no-default", action="store_true", help="skip the default-config row")
    parser.add_argument("--no-magenta", action="store_true", help="skip Magenta's reference row")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    from nst.judge import JudgeSpec

    if not Path(args.data).is_dir():
        hint = "run `make photos`" if args.data == DEFAULT_DATA else "give --data a folder of training photos"
        parser.exit(2, f"python -m bench.fidelity: error: {args.data}: no such folder; {hint}\n")
    settings, typed = bench_settings(args)
    started = time.perf_counter()
    result = run_bench(args.storage, args.study, str(Path(args.data).resolve()), Path(args.out), trials=args.trials,
                       pick=args.pick, explicit=typed,
                       settings=settings, artifacts=args.artifacts, default_config=False if args.no_default else None,
                       judge_spec=JudgeSpec.for_network(args.judge_network) if args.judge_network else None,
                       magenta_reference=not args.no_magenta, progress=not args.quiet, proxy_init=args.proxy_init,
                       proxy_steps=args.proxy_steps,
                       log=lambda s: print(s, file=sys.stderr if s.startswith("  ") else sys.stdout, flush=True))
    print(f"wall time {(time.perf_counter() - started) / 60:.1f} min; sheet {result['sheet']}")
    # A network whose scores are not finite fails the run (rho is NaN below 3 rows, which is not a failure).
    return 0 if all(math.isfinite(v) for r in result["rows"] for v in r["network"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
