"""``tuner search``: run (or continue) a study until it has ``--trials`` finished trials.

A *finished* trial is one that completed or was stopped early (pruned); failed trials
(a NaN loss, an interrupted run) do not count. This module prepares a study (inputs
checked, study and record created or checked, recipes queued) and prints progress; the
trials run in :mod:`tuner.workers` (Optuna's ``study.optimize`` with callbacks), in this
process or, with ``--jobs N``, in N worker processes. Resuming is running the same
command again:

* finished trials are never redone;
* a trial whose worker died (kill -9, power loss) stops sending heartbeats; after the
  grace period (4 heartbeats) any worker marks it failed and queues a clean copy with the
  same parameters (:class:`tuner.workers.RetryCleanCopy`), at most ``MAX_RETRY`` times in a row;
* a trial interrupted by Ctrl-C or SIGTERM is marked failed and queued again at once, and
  the command prints how to resume;
* the study, its record and the queue of published recipes are created under a lock
  (:func:`tuner.storage.storage_lock`), so processes starting together never queue a
  recipe twice, and a run killed before the queue was complete gets it completed by the
  next run;
* ``--seed`` is honoured by the process that creates the study; every later process
  reseeds its sampler so it cannot replay parameters already tried.

``python -m bench.chaos`` kills a search at random moments and checks all of this
(docs/reliability.md).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError, caused_by_interrupt
from tuner.liveness import counts
from tuner.options import SearchOptions
from tuner.reader import check_name, default_trial, safe_name
from tuner.records import StudyRecord, TrialRecord, trial_records
from tuner.workers import (  # noqa: F401
    MAX_CONSECUTIVE_FAILURES,
    MAX_RETRY,
    RetryCleanCopy,
    raise_terminated,
    sigterm_as_interrupt,
    work,
)


@dataclass
class Prepared:
    options: SearchOptions
    study: Any
    record: StudyRecord
    created: bool
    objective: Any
    skipped: dict[str, str]
    seeded: list[str] = field(default_factory=list)
    storage: Any = None  # the RDBStorage the study lives in (heartbeats are recorded through it)


def study_name_for(style: str) -> str:
    """The default study name: the painting's file name without extension, made safe (see ``safe_name``)."""
    return check_name(safe_name(Path(style).stem, "study"))


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


@dataclass(frozen=True)
class _Inputs:
    """What a search reads and checks before it touches storage: the painting, the test photos, the judge."""

    name: str
    painting: np.ndarray
    style_bytes: bytes
    photos: list[Any]  # tuner.study.Photo
    networks: tuple[str, ...]
    skipped: dict[str, str]
    judge: Any  # nst.judge.JudgeSpec

    @property
    def batch(self) -> np.ndarray:
        return np.stack([p.image for p in self.photos])


def prepare(options: SearchOptions, *, make: bool = True) -> Prepared:
    """Validate inputs, open or create the study, bind the judge: everything before the first trial."""
    from tuner.reader import artifact_dir
    from tuner.study import atomic_store

    _quiet_optuna()
    inputs = _read_inputs(options)
    artifact_folder = artifact_dir(options.storage, options.artifacts)
    store = atomic_store(artifact_folder)
    sampler, pruner = _sampler(options, inputs.networks), _pruner(options)
    wanted = _wanted_record(options, inputs, artifact_folder)
    views = view_photos(inputs.photos, wanted.view_size)
    study, record, created, seeded, storage = _open_study(options, inputs, wanted, store, views, sampler, pruner)
    if not created:
        # A seeded sampler draws the same sequence in every process. Only the run that created
        # the study keeps --seed (so a new single-process search is reproducible); a resumed run,
        # a --jobs worker or another terminal would otherwise replay parameters already tried.
        sampler.reseed_rng()
    _check_proxy(options, inputs.name, record)
    if record.view_size != wanted.view_size:  # a resumed study paints at the view size it was made with
        views = view_photos(inputs.photos, record.view_size)
    paint = view_photos(inputs.photos, record.paint_side) if record.proxy_kind == "network" else []
    objective = _objective(options, inputs, study, record, store, views, paint)
    return Prepared(options, study, record, created, objective, inputs.skipped, seeded, storage)


def _read_inputs(options: SearchOptions) -> _Inputs:
    """Load the painting and the test photos, and check that the judge's weights are here."""
    from dataclasses import replace

    from nst.images import load_image
    from nst.judge import JudgeSpec
    from nst.judge import available as judge_available
    from tuner.space import available_networks
    from tuner.study import content_paths, load_photos

    name = check_name(options.study) if options.study else study_name_for(options.style)
    painting = load_image(options.style)
    style_bytes = Path(options.style).read_bytes()
    photos = load_photos(content_paths(list(options.content) if options.content else None, options.photos), options.size)
    networks, skipped = available_networks(options.networks)
    spec = replace(JudgeSpec.for_network(options.judge_network), noise_limit=options.noise_limit)
    ok, why = judge_available(spec)
    if not ok:
        raise StyletuneError(f"the judge needs {spec.network}, whose weights are missing ({why})")
    return _Inputs(name, painting, style_bytes, photos, tuple(networks), skipped, spec)


def _sampler(options: SearchOptions, networks: tuple[str, ...]):
    import optuna

    if options.sampler == "random":
        return optuna.samplers.RandomSampler(seed=options.seed)
    return optuna.samplers.TPESampler(seed=options.seed, multivariate=True, group=len(networks) > 1,
                                      constant_liar=True, n_startup_trials=10)


def _pruner(options: SearchOptions):
    """Optuna's percentile pruner for a one-objective (``--tradeoff``) study; the Pareto rule
    (:class:`tuner.stopping.ParetoStopRule`) stops two-objective trials inside the objective."""
    import optuna

    if options.tradeoff is not None and options.prune:
        return optuna.pruners.PercentilePruner(75.0, n_startup_trials=8, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def _proxy_kind(options: SearchOptions) -> str:
    """The proxy this run asks for (the default when none), checked against the proxy size."""
    from nst.config import DEFAULT_PROXY, PROXY_KINDS

    kind = options.proxy or DEFAULT_PROXY
    if kind not in PROXY_KINDS:
        raise StyletuneError(f"unknown proxy {kind!r}; choose one of {', '.join(PROXY_KINDS)}")
    if kind == "network" and options.size % 4:
        raise StyletuneError(f"--size {options.size}: the network proxy needs a multiple of 4 "
                             f"(e.g. --size {options.size // 4 * 4}), or use --proxy gatys")
    if kind == "network" and options.paint_side and (options.paint_side % 4 or options.paint_side < options.size):
        raise StyletuneError(f"--paint-side {options.paint_side}: must be a multiple of 4 no smaller than --size "
                             f"{options.size} (e.g. --paint-side {max(options.size, options.paint_side // 4 * 4)}), "
                             "or 0 to tune on whole photos")
    if options.judge_at == "view" and (kind != "network" or not options.view_size):
        why = "--proxy gatys renders only at --size" if kind != "network" else "--view-size 0 paints none"
        raise StyletuneError(f"--judge-at view needs pictures at the view size and {why}; "
                             "use --judge-at proxy (or drop it)")
    return kind


def _paint_side(options: SearchOptions, photos) -> int:
    """The side the network proxy paints at: ``--paint-side``, but never above the view size (a
    picture no larger than the paint side is painted whole) nor above the smallest test photo's
    short side (enlarging a photo to paint it finer than it is gives crops with nothing in them).
    0 when that leaves no more than the proxy size: the trial tunes on whole photos at ``--size``."""
    from PIL import Image

    side = options.paint_side
    if options.view_size:
        side = min(side, options.view_size)
    for p in photos:
        with Image.open(p.path) as im:
            side = min(side, *im.size)
    side -= side % 4
    return side if side > options.size else 0


def _wanted_record(options: SearchOptions, inputs: _Inputs, artifact_folder: Path):
    """The study record this run would create (a resumed study's stored one must match its identity)."""
    import hashlib

    from nst.config import PROXY_LR
    from tuner.stopping import ParetoStopRule
    from tuner.study import make_record

    kind = _proxy_kind(options)
    paint_side = _paint_side(options, inputs.photos) if kind == "network" else 0
    early_stop = None
    if options.prune:
        early_stop = ({"rule": "PercentilePruner", "percentile": 75.0, "n_startup_trials": 8}
                      if options.tradeoff is not None else ParetoStopRule().to_dict())
    return make_record(
        style_path=Path(options.style), style_sha256=hashlib.sha256(inputs.style_bytes).hexdigest(),
        photos=inputs.photos, proxy_size=options.size, steps=options.steps, judge=inputs.judge.to_dict(),
        tradeoff=options.tradeoff, networks=inputs.networks, skipped=inputs.skipped, seed=options.seed,
        proxy=({"kind": kind, "lr": PROXY_LR, "blend": True, **({"paint_side": paint_side} if paint_side else {}),
                **({"judged_at": "view"} if options.view_size and options.judge_at != "proxy" else {})}
               if kind == "network" else {"kind": kind}),
        early_stop=early_stop, view_size=options.view_size if kind == "network" and options.view_size else None,
        artifact_folder=artifact_folder)


def _open_study(options: SearchOptions, inputs: _Inputs, wanted, store, views: list[np.ndarray], sampler, pruner):
    """Open or create the study and queue the published recipes; returns (study, record, created, seeded, storage).

    Several processes may start on a new study at once (three terminals, --jobs workers,
    machines sharing PostgreSQL): creating the tables, the study, its record and the recipe
    queue happens under a lock, so exactly one of them does it and the others find it done.
    """
    from tuner.space import SearchSpace, calibrate
    from tuner.storage import open_storage, storage_lock
    from tuner.study import open_or_create

    single = options.tradeoff is not None
    with storage_lock(options.storage, inputs.name):
        storage = open_storage(options.storage, create=True, heartbeat=options.heartbeat,
                               stale_trial_callback=RetryCleanCopy())
        study, record, created = open_or_create(
            storage, inputs.name, wanted, style_bytes=inputs.style_bytes, photos=inputs.photos, store=store,
            view_photos=views, directions=["minimize"] if single else ["minimize", "minimize"], sampler=sampler,
            pruner=pruner,
            make_space=lambda: SearchSpace(inputs.networks, calibrate(inputs.networks, inputs.batch,
                                                                      inputs.painting)).to_dict(),
        )
        # Recipes are queued right after the record is written; a run killed in between (or
        # half-way through the queue) left them missing, so any run that finds only recipe
        # trials so far completes the queue. Queuing skips recipes already there.
        recipes_only = all(r.recipe for r in trial_records(study.get_trials(deepcopy=False)))
        space = SearchSpace.from_dict(record.space)
        seeded = _seed_recipes(study, space) if recipes_only and options.sampler != "random" else []
    return study, record, created, seeded, storage


def _check_proxy(options: SearchOptions, name: str, record) -> None:
    """A resumed study keeps the proxy it was made with; asking for another one is refused."""
    from tuner.study import StudyMismatch

    if options.proxy and options.proxy != record.proxy_kind:
        raise StudyMismatch(f"study {name!r} renders its trials with the {record.proxy_kind} proxy, this run asks "
                            f"for --proxy {options.proxy}; drop --proxy to continue it, or choose a new --study name")


def _objective(options: SearchOptions, inputs: _Inputs, study, record, store, views: list[np.ndarray],
               paint: list[np.ndarray]):
    """The trial runner, bound to this study's record: its space, proxy, judge, view-size and paint-side photos."""
    from nst.config import PROXY_LR
    from nst.judge import Judge
    from tuner.objective import Objective
    from tuner.space import SearchSpace
    from tuner.stopping import checkpoint_steps

    proxy = record.proxy
    network = record.proxy_kind == "network"
    # the final scores come from the judge at the view size when the study judges there (the pictures people see)
    view_judge = Judge(inputs.judge, np.stack(views), inputs.painting) if record.judges_view and views else None
    return Objective(study=study, space=SearchSpace.from_dict(record.space), photos=inputs.photos,
                     painting=inputs.painting, judge=Judge(inputs.judge, inputs.batch, inputs.painting), store=store,
                     steps=options.steps, tradeoff=options.tradeoff, checkpoints=checkpoint_steps(options.steps),
                     prune=options.prune, proxy=record.proxy_kind, lr=float(proxy.get("lr", PROXY_LR)),
                     blend=bool(proxy.get("blend", False)), view=views if network else [], paint=paint,
                     view_judge=view_judge)


def view_photos(photos, view_size: int | None) -> list[np.ndarray]:
    """The test photos cropped like the proxy's squares, at ``view_size`` px (none when it is None or 0).

    Also the photos a paint-side network proxy tunes on (the record's ``paint_side``)."""
    from nst.images import center_crop_square, load_image

    if not view_size:
        return []
    return [center_crop_square(load_image(p.path), view_size) for p in photos]


def _seed_recipes(study, space) -> list[str]:
    """Enqueue the published recipes (translated to this study's networks) as the first trials.

    Recipes already in the study (queued, run or re-queued) are skipped, so calling this
    again after an interrupted start queues only the missing ones. Returns what was queued.
    """
    from nst.config import RECIPES
    from tuner.space import recipe_params

    present = {r.recipe for r in trial_records(study.get_trials(deepcopy=False))}
    lines = []
    for name, config in RECIPES.items():
        if name in present:
            continue
        params, notes = recipe_params(config, space)
        marked = TrialRecord(number=-1, state="WAITING", recipe=name).to_user_attrs()  # {"recipe": name}
        study.enqueue_trial(params, user_attrs=marked, skip_if_exists=True)
        lines.append(name + (f" ({'; '.join(notes)})" if notes else ""))
    return lines


# -- progress ----------------------------------------------------------------------------

def _short_layers(config: dict[str, Any]) -> str:
    names = [k.replace("block", "").replace("_conv", ".") for k, v in config.get("style_layers", {}).items() if v > 0]
    return ",".join(names)


def trial_line(t) -> str:
    """One line per finished trial: state, scores, the main settings, time."""
    rec = TrialRecord.from_trial(t)
    cfg = rec.style_config or {}
    where = (f"{cfg.get('network')}/{cfg.get('pooling')} content {cfg.get('content_layer')} "
             f"style {_short_layers(cfg)}  R {t.params.get('style_ratio', math.nan):.2g} "
             f"T {t.params.get('tv_ratio', math.nan):.2g} scale {t.params.get('style_scale', math.nan):.2f}") if cfg else ""
    secs = f"{rec.seconds or 0:.0f} s"
    recipe = f" [{rec.recipe}]" if rec.recipe else ""
    if t.state.name == "COMPLETE":
        s = rec.scores
        flag = "" if rec.feasible else " INFEASIBLE(noise)"
        return (f"trial {t.number:3d} done    style {s.get('style', math.nan):.3f} content {s.get('content', math.nan):.3f} "
                f"noise {s.get('noise', math.nan):.2f}{flag}  {where}  {secs}{recipe}")
    if t.state.name == "PRUNED":
        return f"trial {t.number:3d} stopped {rec.prune_reason or 'early'}  {where}  {secs}{recipe}"
    return f"trial {t.number:3d} failed  {rec.fail_reason or 'see the log'}  {where}{recipe}"


def best_summary(study) -> str:
    """The trial ``tuner best`` would pick right now, for the progress bar."""
    try:
        n = default_trial(study)
    except StyletuneError:
        return "best: none yet"
    t = next(t for t in study.get_trials(deepcopy=False) if t.number == n)
    s = TrialRecord.from_trial(t).scores
    return f"best #{n} style {s.get('style', math.nan):.2f} content {s.get('content', math.nan):.2f}"


class Monitor:
    """A tqdm bar over finished trials with the current best, and one line per trial that ends."""

    def __init__(self, study, target: int, quiet: bool = False):
        from tqdm import tqdm

        self.study = study
        self.target = target
        self.quiet = quiet
        trials = study.get_trials(deepcopy=False)
        self.reported = {t.number for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")}
        done = sum(1 for t in trials if t.state.name in ("COMPLETE", "PRUNED"))
        self.bar = tqdm(total=target, initial=min(done, target), desc=study.study_name, unit="trial",
                        disable=quiet, dynamic_ncols=True, file=sys.stderr)
        self.bar.set_postfix_str(best_summary(study))

    def poll(self) -> None:
        from tqdm import tqdm

        new = [t for t in self.study.get_trials(deepcopy=False)
               if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and t.number not in self.reported]
        for t in sorted(new, key=lambda t: t.number):
            self.reported.add(t.number)
            line = trial_line(t)
            if self.quiet:
                print(line, flush=True)
            else:
                tqdm.write(line, file=sys.stdout)
            if t.state.name in ("COMPLETE", "PRUNED") and self.bar.n < self.target:
                self.bar.update(1)
        if new:
            self.bar.set_postfix_str(best_summary(self.study))

    def close(self) -> None:
        self.bar.close()


def _baseline_line(prep: Prepared, options: SearchOptions) -> str:
    """Compute the study's off-the-shelf reference once, before the first trial, so the dashboard has it from the start."""
    from tuner.baseline import BaselineUnavailable, ensure_baseline

    try:
        base = ensure_baseline(prep.study, options.storage, options.artifacts)
    except BaselineUnavailable as exc:
        return f"note: no off-the-shelf baseline for this study: {exc}"
    s = base.scores
    return (f"off-the-shelf baseline (Magenta's arbitrary model, no training): style {s['style']:.3f}, "
            f"content {s['content']:.3f}, noise {s['noise']:.2f}; the trials to look at beat it on both")


def run_search(options: SearchOptions, log=print) -> Prepared:
    """The ``tuner search`` command: prepare, report, work (here or in ``--jobs`` processes), summarise."""
    prep = prepare(options)
    study, rec = prep.study, prep.record
    c = counts(study)
    nets = ", ".join(rec.networks)
    skipped = "; ".join(f"{k}: {v}" for k, v in prep.skipped.items())
    log(f"study {study.study_name!r} in {options.storage} ({'new' if prep.created else 'resumed'}: "
        f"{c['finished']} of {options.trials} trials finished)")
    log(f"networks searched: {nets}" + (f"  (skipped - {skipped})" if skipped else ""))
    where = f" in {rec.proxy_size} px crops at {rec.paint_side} px, the side it paints at" if rec.paint_side else ""
    how = (f"Magenta's network tuned on them{where} (the network trainer fit trains)" if rec.proxy_kind == "network"
           else "Gatys pixel optimisation")
    log(f"test photos: {', '.join(rec.content_names)} at {rec.proxy_size} px, {rec.steps} steps of {how}; "
        f"judge {rec.judge['name']} v{rec.judge['version']} on {rec.judge['network']}"
        f"{f' at {rec.judge_side} px, the view size' if rec.judges_view else ''}; "
        f"objectives: {' and '.join(rec.objectives)}; early stop {'on' if options.prune else 'off'}")
    if prep.seeded:
        log("seeded with published recipes: " + "; ".join(prep.seeded))
    log(_baseline_line(prep, options))
    if c["finished"] >= options.trials:
        log(f"the study already has {c['finished']} finished trials; raise --trials to continue it")
        return prep
    monitor = Monitor(study, options.trials, options.quiet)
    try:
        with sigterm_as_interrupt():
            if options.jobs <= 1:
                work(prep, options.trials, monitor)
            else:
                from tuner.workers import run_processes

                run_processes(options, study, monitor, _child)
        monitor.poll()
    finally:
        monitor.close()
    return prep


# -- worker processes (--jobs) -------------------------------------------------------------

def _worker_main(options, target: int, parent: int) -> int:
    """Entry point of a ``--jobs`` worker process."""
    from nst.errors import StyletuneNote

    warnings.simplefilter("ignore", StyletuneNote)  # the parent process has said it already
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        if options.threads:
            os.environ["OMP_NUM_THREADS"] = str(options.threads)
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(options.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        prep = prepare(options)
        prep.objective.should_abort = lambda: os.getppid() != parent
        work(prep, target)
        return 0
    except KeyboardInterrupt:
        return 130
    except StyletuneError as exc:
        sys.stderr.write(f"tuner search worker {os.getpid()}: error: {exc}\n")
        return 2
    except Exception as exc:
        if caused_by_interrupt(exc):  # the stop signal cut an import short (see nst.errors)
            return 130
        raise


def _child(options, target: int, parent: int) -> None:
    raise SystemExit(_worker_main(options, target, parent))
