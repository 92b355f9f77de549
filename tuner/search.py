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
from tuner.reader import CONFIG_ATTR, SCORES_ATTR, check_name, default_trial, safe_name
from tuner.records import RECIPE_ATTR, TrialRecord
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
    record: dict[str, Any]
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


def prepare(options: SearchOptions, *, make: bool = True) -> Prepared:
    """Validate inputs, open or create the study, bind the judge: everything before the first trial."""
    import hashlib

    import optuna

    from nst.config import DEFAULT_PROXY, PROXY_KINDS, PROXY_LR
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec
    from nst.judge import available as judge_available
    from tuner.objective import Objective
    from tuner.reader import artifact_dir
    from tuner.records import STUDY_ATTR, StudyRecord
    from tuner.space import SearchSpace, available_networks, calibrate
    from tuner.stopping import ParetoStopRule, checkpoint_steps
    from tuner.storage import open_storage, storage_lock
    from tuner.study import StudyMismatch, atomic_store, content_paths, load_photos, make_record, open_or_create

    _quiet_optuna()
    name = check_name(options.study) if options.study else study_name_for(options.style)
    painting = load_image(options.style)
    style_bytes = Path(options.style).read_bytes()
    photos = load_photos(content_paths(list(options.content) if options.content else None, options.photos), options.size)
    batch = np.stack([p.image for p in photos])
    networks, skipped = available_networks(options.networks)
    from dataclasses import replace

    spec = replace(JudgeSpec.for_network(options.judge_network), noise_limit=options.noise_limit)
    ok, why = judge_available(spec)
    if not ok:
        raise StyletuneError(f"the judge needs {spec.network}, whose weights are missing ({why})")
    artifact_folder = artifact_dir(options.storage, options.artifacts)
    store = atomic_store(artifact_folder)
    single = options.tradeoff is not None
    if options.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=options.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=options.seed, multivariate=True, group=len(networks) > 1,
                                             constant_liar=True, n_startup_trials=10)
    pruner = (optuna.pruners.PercentilePruner(75.0, n_startup_trials=8, n_warmup_steps=0)
              if single and options.prune else optuna.pruners.NopPruner())
    kind = options.proxy or DEFAULT_PROXY
    if kind not in PROXY_KINDS:
        raise StyletuneError(f"unknown proxy {kind!r}; choose one of {', '.join(PROXY_KINDS)}")
    if kind == "network" and options.size % 4:
        raise StyletuneError(f"--size {options.size}: the network proxy needs a multiple of 4 "
                             f"(e.g. --size {options.size // 4 * 4}), or use --proxy gatys")
    wanted = make_record(style_path=Path(options.style), style_sha256=hashlib.sha256(style_bytes).hexdigest(),
                         photos=photos, proxy_size=options.size, steps=options.steps, judge=spec.to_dict(),
                         tradeoff=options.tradeoff, networks=networks, skipped=skipped, space={},
                         seed=options.seed, proxy={"kind": kind, "lr": PROXY_LR, "blend": True} if kind == "network" else {"kind": kind},
                         artifact_folder=artifact_folder)
    wanted["early_stop"] = ({"rule": "PercentilePruner", "percentile": 75.0, "n_startup_trials": 8} if single
                            else ParetoStopRule().to_dict()) if options.prune else None
    view_size = options.view_size if kind == "network" and options.view_size else None
    wanted["view_size"] = view_size
    views = view_photos(photos, view_size)
    # Several processes may start on a new study at once (three terminals, --jobs workers,
    # machines sharing PostgreSQL): creating the tables, the study, its record and the recipe
    # queue happens under a lock, so exactly one of them does it and the others find it done.
    with storage_lock(options.storage, name):
        storage = open_storage(options.storage, create=True, heartbeat=options.heartbeat,
                               stale_trial_callback=RetryCleanCopy())
        study, record, created = open_or_create(
            storage, name, wanted, style_bytes=style_bytes, photos=photos, store=store,
            view_photos=views,
            directions=["minimize"] if single else ["minimize", "minimize"], sampler=sampler, pruner=pruner,
            make_space=lambda: SearchSpace(networks, calibrate(networks, batch, painting)).to_dict(),
        )
        space = SearchSpace.from_dict(record["space"])
        # Recipes are queued right after the record is written; a run killed in between (or
        # half-way through the queue) left them missing, so any run that finds only recipe
        # trials so far completes the queue. Queuing skips recipes already there.
        recipes_only = all(t.user_attrs.get(RECIPE_ATTR) for t in study.get_trials(deepcopy=False))
        seeded = _seed_recipes(study, space) if recipes_only and options.sampler != "random" else []
    if not created:
        # A seeded sampler draws the same sequence in every process. Only the run that created
        # the study keeps --seed (so a new single-process search is reproducible); a resumed run,
        # a --jobs worker or another terminal would otherwise replay parameters already tried.
        sampler.reseed_rng()
    proxy = StudyRecord.from_user_attrs({STUDY_ATTR: record}).proxy
    if options.proxy and options.proxy != proxy.get("kind", "gatys"):
        raise StudyMismatch(f"study {name!r} renders its trials with the {proxy.get('kind', 'gatys')} proxy, this run asks "
                            f"for --proxy {options.proxy}; drop --proxy to continue it, or choose a new --study name")
    stored_view = StudyRecord.from_user_attrs({STUDY_ATTR: record}).view_size
    judge = Judge(spec, batch, painting)
    objective = Objective(study=study, space=space, photos=photos, painting=painting, judge=judge, store=store,
                          steps=options.steps, tradeoff=options.tradeoff, checkpoints=checkpoint_steps(options.steps),
                          prune=options.prune, proxy=str(proxy.get("kind", "gatys")),
                          lr=float(proxy.get("lr", PROXY_LR)), blend=bool(proxy.get("blend", False)),
                          view=(views if stored_view == view_size else view_photos(photos, stored_view))
                          if proxy.get("kind") == "network" else [])
    return Prepared(options, study, record, created, objective, skipped, seeded, storage)


def view_photos(photos, view_size: int | None) -> list[np.ndarray]:
    """The test photos cropped like the proxy's squares, at ``view_size`` px (none when it is None)."""
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

    present = {t.user_attrs.get(RECIPE_ATTR) for t in study.get_trials(deepcopy=False)}
    lines = []
    for name, config in RECIPES.items():
        if name in present:
            continue
        params, notes = recipe_params(config, space)
        study.enqueue_trial(params, user_attrs={RECIPE_ATTR: name}, skip_if_exists=True)
        lines.append(name + (f" ({'; '.join(notes)})" if notes else ""))
    return lines


# -- progress ----------------------------------------------------------------------------

def _short_layers(config: dict[str, Any]) -> str:
    names = [k.replace("block", "").replace("_conv", ".") for k, v in config.get("style_layers", {}).items() if v > 0]
    return ",".join(names)


def trial_line(t) -> str:
    """One line per finished trial: state, scores, the main settings, time."""
    ua = t.user_attrs
    cfg = ua.get(CONFIG_ATTR) or {}
    where = (f"{cfg.get('network')}/{cfg.get('pooling')} content {cfg.get('content_layer')} "
             f"style {_short_layers(cfg)}  R {t.params.get('style_ratio', math.nan):.2g} "
             f"T {t.params.get('tv_ratio', math.nan):.2g} scale {t.params.get('style_scale', math.nan):.2f}") if cfg else ""
    secs = f"{ua.get('seconds', 0):.0f} s"
    recipe = f" [{ua[RECIPE_ATTR]}]" if ua.get(RECIPE_ATTR) else ""
    if t.state.name == "COMPLETE":
        s = ua.get(SCORES_ATTR, {})
        flag = "" if TrialRecord.from_trial(t).feasible else " INFEASIBLE(noise)"
        return (f"trial {t.number:3d} done    style {s.get('style', math.nan):.3f} content {s.get('content', math.nan):.3f} "
                f"noise {s.get('noise', math.nan):.2f}{flag}  {where}  {secs}{recipe}")
    if t.state.name == "PRUNED":
        return f"trial {t.number:3d} stopped {ua.get('prune_reason', 'early')}  {where}  {secs}{recipe}"
    return f"trial {t.number:3d} failed  {ua.get('fail_reason', 'see the log')}  {where}{recipe}"


def best_summary(study) -> str:
    """The trial ``tuner best`` would pick right now, for the progress bar."""
    try:
        n = default_trial(study)
    except StyletuneError:
        return "best: none yet"
    t = next(t for t in study.get_trials(deepcopy=False) if t.number == n)
    s = t.user_attrs.get(SCORES_ATTR, {})
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
    nets = ", ".join(rec["networks"])
    skipped = "; ".join(f"{k}: {v}" for k, v in prep.skipped.items())
    log(f"study {study.study_name!r} in {options.storage} ({'new' if prep.created else 'resumed'}: "
        f"{c['finished']} of {options.trials} trials finished)")
    log(f"networks searched: {nets}" + (f"  (skipped - {skipped})" if skipped else ""))
    proxy = rec.get("proxy") or {"kind": "gatys"}
    how = ("Magenta's network tuned on them (the network trainer fit trains)" if proxy.get("kind") == "network"
           else "Gatys pixel optimisation")
    log(f"test photos: {', '.join(rec['content_names'])} at {rec['proxy_size']} px, {rec['steps']} steps of {how}; "
        f"judge {rec['judge']['name']} v{rec['judge']['version']} on {rec['judge']['network']}; "
        f"objectives: {' and '.join(rec['objectives'])}; early stop {'on' if options.prune else 'off'}")
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
