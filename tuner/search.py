"""``tuner search``: run (or continue) a study until it has ``--trials`` finished trials.

A *finished* trial is one that completed or was stopped early (pruned); failed trials
(a NaN loss, an interrupted run) do not count. Workers are processes: with ``--jobs N``
the command starts N processes on the same study and this process only watches the
storage and prints progress. Resuming is running the same command again:

* finished trials are never redone;
* a trial whose worker died (kill -9, power loss) stops sending heartbeats; after the
  grace period (4 heartbeats) any worker marks it failed and queues a clean copy with the
  same parameters (:func:`_retry_stale`), at most ``MAX_RETRY`` times in a row;
* a trial interrupted by Ctrl-C is marked failed and queued again at once, and the
  command prints how to resume;
* the study, its record and the queue of published recipes are created under a lock
  (:func:`creation_lock`), so processes starting together never queue a recipe twice, and
  a run killed before the queue was complete gets it completed by the next run;
* ``--seed`` is honoured by the process that creates the study; every later process
  reseeds its sampler so it cannot replay parameters already tried.

``python -m bench.chaos`` kills a search at random moments and checks all of this
(docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from tuner.reader import CONFIG_ATTR, SCORES_ATTR, check_name, default_trial, safe_name

#: Stop a worker after this many trials in a row failed: something is wrong beyond one config.
MAX_CONSECUTIVE_FAILURES = 5
MAX_RETRY = 3


@dataclass(frozen=True)
class SearchOptions:
    """Everything ``tuner search`` was asked to do (picklable, so worker processes get a copy)."""

    style: str
    content: tuple[str, ...] | None = None
    photos: int = 3
    size: int = 128
    steps: int = 50
    trials: int = 50
    jobs: int = 1
    study: str | None = None
    storage: str = "sqlite:///studies/studies.db"
    artifacts: str | None = None
    networks: tuple[str, ...] | None = None
    judge_network: str = "magenta"  # nst.judge.MAGENTA: a style network no trial optimises through
    noise_limit: float = 1.5
    tradeoff: float | None = None
    seed: int | None = None
    prune: bool = True
    heartbeat: int = 10
    quiet: bool = False
    threads: int | None = None  # TensorFlow intra-op threads per worker (None: TensorFlow's default)
    sampler: str = "tpe"  # "random": plain random search without recipes (the benchmark's baseline)


@dataclass
class Prepared:
    options: SearchOptions
    study: Any
    record: dict[str, Any]
    created: bool
    objective: Any
    skipped: dict[str, str]
    seeded: list[str] = field(default_factory=list)


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

    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec
    from nst.judge import available as judge_available
    from tuner.objective import Objective
    from tuner.reader import artifact_dir, open_storage
    from tuner.space import SearchSpace, available_networks, calibrate
    from tuner.stopping import ParetoStopRule, checkpoint_steps
    from tuner.study import atomic_store, content_paths, load_photos, make_record, open_or_create

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
    store = atomic_store(artifact_dir(options.storage, options.artifacts))
    single = options.tradeoff is not None
    if options.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=options.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=options.seed, multivariate=True, group=len(networks) > 1,
                                             constant_liar=True, n_startup_trials=10)
    pruner = (optuna.pruners.PercentilePruner(75.0, n_startup_trials=8, n_warmup_steps=0)
              if single and options.prune else optuna.pruners.NopPruner())
    wanted = make_record(style_path=Path(options.style), style_sha256=hashlib.sha256(style_bytes).hexdigest(),
                         photos=photos, proxy_size=options.size, steps=options.steps, judge=spec.to_dict(),
                         tradeoff=options.tradeoff, networks=networks, skipped=skipped, space={},
                         seed=options.seed)
    wanted["early_stop"] = ({"rule": "PercentilePruner", "percentile": 75.0, "n_startup_trials": 8} if single
                            else ParetoStopRule().to_dict()) if options.prune else None
    # Several processes may start on a new study at once (three terminals, --jobs workers,
    # machines sharing PostgreSQL): creating the tables, the study, its record and the recipe
    # queue happens under a lock, so exactly one of them does it and the others find it done.
    with creation_lock(options.storage, name):
        storage = open_storage(options.storage, create=True, heartbeat=options.heartbeat,
                               stale_trial_callback=_retry_stale)
        study, record, created = open_or_create(
            storage, name, wanted, style_bytes=style_bytes, photos=photos, store=store,
            directions=["minimize"] if single else ["minimize", "minimize"], sampler=sampler, pruner=pruner,
            make_space=lambda: SearchSpace(networks, calibrate(networks, batch, painting)).to_dict(),
        )
        space = SearchSpace.from_dict(record["space"])
        # Recipes are queued right after the record is written; a run killed in between (or
        # half-way through the queue) left them missing, so any run that finds only recipe
        # trials so far completes the queue. Queuing skips recipes already there.
        recipes_only = all(t.user_attrs.get("recipe") for t in study.get_trials(deepcopy=False))
        seeded = _seed_recipes(study, space) if recipes_only and options.sampler != "random" else []
    if not created:
        # A seeded sampler draws the same sequence in every process. Only the run that created
        # the study keeps --seed (so a new single-process search is reproducible); a resumed run,
        # a --jobs worker or another terminal would otherwise replay parameters already tried.
        sampler.reseed_rng()
    judge = Judge(spec, batch, painting)
    objective = Objective(study=study, space=space, photos=photos, painting=painting, judge=judge, store=store,
                          steps=options.steps, tradeoff=options.tradeoff, checkpoints=checkpoint_steps(options.steps),
                          prune=options.prune)
    return Prepared(options, study, record, created, objective, skipped, seeded)


def _seed_recipes(study, space) -> list[str]:
    """Enqueue the published recipes (translated to this study's networks) as the first trials.

    Recipes already in the study (queued, run or re-queued) are skipped, so calling this
    again after an interrupted start queues only the missing ones. Returns what was queued.
    """
    from nst.config import RECIPES
    from tuner.space import recipe_params

    present = {t.user_attrs.get("recipe") for t in study.get_trials(deepcopy=False)}
    lines = []
    for name, config in RECIPES.items():
        if name in present:
            continue
        params, notes = recipe_params(config, space)
        study.enqueue_trial(params, user_attrs={"recipe": name}, skip_if_exists=True)
        lines.append(name + (f" ({'; '.join(notes)})" if notes else ""))
    return lines


@contextlib.contextmanager
def creation_lock(url: str, name: str) -> Iterator[None]:
    """Hold an exclusive lock, per storage and study name, while a study is opened or created.

    SQLite: ``flock`` on a hidden file beside the database (SQLite is one machine's storage,
    so a file lock reaches every process that can open it). PostgreSQL and MySQL: a
    session-level advisory lock on the server, on a connection of its own, taken before
    Optuna creates its tables (concurrent ``CREATE TABLE`` on a new PostgreSQL database
    fails). Other back ends: no lock. The operating system or the server releases the lock
    when its process dies, so a killed run never leaves it held.
    """
    import hashlib

    from tuner.reader import sqlite_path

    db = sqlite_path(url)
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no file lock
        fcntl = None  # type: ignore[assignment]
    if db is not None and fcntl is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.parent / f".{db.name}.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    dialect = url.split(":", 1)[0].split("+", 1)[0].lower()
    if db is not None or dialect not in ("postgresql", "postgres", "mysql", "mariadb"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"styletune-study:{name}".encode()).digest()[:8], "big", signed=True)
    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        conn = engine.connect()
    except Exception:  # noqa: BLE001 - open_storage then reports the bad URL or server in one line
        conn = None
    if conn is None:
        yield
        return
    try:
        if dialect in ("postgresql", "postgres"):
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        else:
            conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 3600)"), {"k": f"styletune-{key}"})
        yield
    finally:
        conn.close()  # ends the session, which releases a session-level lock
        engine.dispose()


# -- counting --------------------------------------------------------------------------

def counts(study) -> dict[str, int]:
    """Trials by state, plus ``finished`` (complete or stopped early) and ``live`` (running, not abandoned).

    A running trial normally ends or, if its worker died, turns stale through the heartbeat
    and is retried. A worker killed in the instant between creating a trial and its first
    heartbeat leaves a trial that never turns stale; one running for more than ten times
    the median trial time (and at least ten minutes) is counted as abandoned, so waiting
    for it cannot stall a search.
    """
    import datetime as dt
    import statistics

    trials = study.get_trials(deepcopy=False)
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0}
    durations = []
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
        if t.state.name == "COMPLETE" and t.datetime_start and t.datetime_complete:
            durations.append((t.datetime_complete - t.datetime_start).total_seconds())
    limit = max(600.0, 10 * statistics.median(durations)) if durations else 600.0
    now = dt.datetime.now()
    out["live"] = sum(1 for t in trials if t.state.name == "RUNNING"
                      and (t.datetime_start is None or (now - t.datetime_start).total_seconds() < limit))
    out["finished"] = out["COMPLETE"] + out["PRUNED"]
    return out


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
    recipe = f" [{ua['recipe']}]" if ua.get("recipe") else ""
    if t.state.name == "COMPLETE":
        s = ua.get(SCORES_ATTR, {})
        flag = "" if ua.get("feasible", True) else " INFEASIBLE(noise)"
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


# -- workers -------------------------------------------------------------------------------

def _requeue(study, number: int | None) -> None:
    """Queue a copy of an interrupted trial with its parameters.

    The same bookkeeping as Optuna's ``RetryHeartbeatStaleTrialCallback`` (system
    attributes ``failed_trial`` and ``retry_history``, at most ``MAX_RETRY`` retries), but
    the copy starts clean: only the parameters, the enqueued ``fixed_params`` and the
    ``recipe`` label carry over, not the interrupted run's ``fail_reason`` or partial scores.
    """
    import optuna

    if number is None:
        return
    t = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    # A trial stopped before it drew any parameter holds nothing to repeat, unless it was a
    # queued one (a recipe), whose parameters wait in ``fixed_params``.
    if t is None or t.state.name != "FAIL" or not (t.params or "fixed_params" in t.system_attrs):
        return
    history = [*t.system_attrs.get("retry_history", []), t.number]
    if len(history) > MAX_RETRY:
        return
    system = {"failed_trial": t.system_attrs.get("failed_trial", t.number), "retry_history": history}
    if "fixed_params" in t.system_attrs:
        system["fixed_params"] = t.system_attrs["fixed_params"]
    user = {k: v for k, v in t.user_attrs.items() if k == "recipe"}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=t.params,
                                              distributions=t.distributions, user_attrs=user, system_attrs=system))


def _retry_stale(study, trial) -> None:
    """Optuna's callback for a trial whose worker stopped sending heartbeats (killed, power cut).

    Optuna marked it failed; queue a clean copy with its parameters (:func:`_requeue`),
    rather than Optuna's ``RetryHeartbeatStaleTrialCallback``, whose copy also inherits the
    dead run's user attributes (a ``prune_reason`` of the interrupted attempt would then
    label the copy's finished result).
    """
    _requeue(study, trial.number)


def _adopt_orphans(study, grace: float, adopted: set[int]) -> None:
    """Give a heartbeat to running trials that never had one, so Optuna's stale check can retry them.

    Optuna starts a trial's heartbeat thread only after ``study.ask()`` has marked the trial
    RUNNING and the sampler has drawn its relative parameters. A worker killed in between
    leaves a RUNNING trial with no heartbeat at all, which ``fail_stale_trials`` never
    considers stale: a queued recipe in that state would never run. A trial without the
    ``worker_pid`` attribute (set as the objective starts) that has been RUNNING longer
    than the grace period is such an orphan; recording one heartbeat for it makes it stale
    one grace period later, and then it is failed and re-queued the normal way. A live
    trial in that state (impossible in practice) would only get a heartbeat it was about
    to record itself. ``adopted`` remembers the trials this process already gave one, so
    it does not keep an orphan fresh by heartbeating it on every pass.
    """
    import datetime as dt

    import optuna

    storage = study._storage
    if not hasattr(storage, "record_heartbeat"):
        return
    now = dt.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "worker_pid" in t.user_attrs or t.datetime_start is None or t._trial_id in adopted:
            continue
        if (now - t.datetime_start).total_seconds() > grace:
            adopted.add(t._trial_id)
            with contextlib.suppress(Exception):  # another worker recorded it at the same moment
                storage.record_heartbeat(t._trial_id)


def work(prep: Prepared, target: int, monitor: Monitor | None = None) -> None:
    """Run trials in this process until the study has ``target`` finished trials."""
    import optuna

    from tuner.objective import TrialFailed

    study, objective = prep.study, prep.objective
    poll = max(1.0, prep.options.heartbeat / 2)
    failures = 0
    last_reason = ""

    def after(study_, frozen) -> None:
        nonlocal failures, last_reason
        if frozen.state.name == "FAIL":
            failures += 1
            last_reason = frozen.user_attrs.get("fail_reason", "")
        else:
            failures = 0
        if monitor is not None:
            monitor.poll()

    grace = 4 * prep.options.heartbeat  # open_storage's grace period
    adopted: set[int] = set()
    while True:
        _adopt_orphans(study, grace, adopted)
        optuna.storages.fail_stale_trials(study)
        c = counts(study)
        if c["finished"] >= target:
            return
        if c["finished"] + c["live"] >= target and c["WAITING"] == 0:
            # The last trials are running elsewhere (or their worker died and the
            # heartbeat grace period has not yet passed): wait instead of overshooting.
            time.sleep(poll)
            if monitor is not None:
                monitor.poll()
            continue
        objective.current = None
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=[after])
        except KeyboardInterrupt:
            _requeue(study, objective.current)
            raise
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise StyletuneError(f"{failures} trials in a row failed (last: {last_reason}); "
                                 "check the painting and photos, or try other --networks")


def _worker_main(options: SearchOptions, target: int, parent: int) -> int:
    """Entry point of a ``--jobs`` worker process."""
    from nst.errors import StyletuneNote

    warnings.simplefilter("ignore", StyletuneNote)  # the parent process has said it already
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


def _child(options: SearchOptions, target: int, parent: int) -> None:
    raise SystemExit(_worker_main(options, target, parent))


def _baseline_line(prep: Prepared, options: SearchOptions) -> str:
    """Compute the study's off-the-shelf reference once, before the first trial, so the dashboard has it from the start."""
    from tuner.study import BaselineUnavailable, ensure_baseline

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
    log(f"test photos: {', '.join(rec['content_names'])} at {rec['proxy_size']} px, {rec['steps']} steps; "
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
        if options.jobs <= 1:
            work(prep, options.trials, monitor)
        else:
            _run_processes(options, study, monitor)
        monitor.poll()
    finally:
        monitor.close()
    return prep


def _run_processes(options: SearchOptions, study, monitor: Monitor) -> None:
    import multiprocessing as mp
    import signal

    ctx = mp.get_context("spawn")
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.jobs)
    child_opts = SearchOptions(**{**options.__dict__, "threads": threads, "quiet": True})
    procs = [ctx.Process(target=_child, args=(child_opts, options.trials, os.getpid()), daemon=False)
             for _ in range(options.jobs)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            monitor.poll()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=60)
        raise
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad and counts(study)["finished"] < options.trials:
        raise StyletuneError(f"{len(bad)} worker process(es) stopped with an error (exit {bad[0]}); see the lines above")
