"""Running trials: one worker process runs ``study.optimize`` until the study has enough finished trials.

A worker is Optuna's own loop, ``study.optimize(objective, callbacks=...)``, with:

* ``MaxTrialsCallback(target, states=(COMPLETE, PRUNED))``: stop once the study holds
  ``target`` finished trials, counted across every process working on it;
* :class:`WaitForSlot`: before each trial, wait while the last trials needed are running
  elsewhere, instead of starting one more than asked for (and fail trials whose worker
  died, so that waiting ends);
* :class:`FailureStreak`: stop after ``MAX_CONSECUTIVE_FAILURES`` failed trials in a row;
* Optuna's heartbeats (``open_storage(heartbeat=...)``), whose stale-trial callback is
  :class:`RetryCleanCopy`: a trial whose worker died is failed by the next worker that
  looks, and a copy with its parameters is queued.

``--jobs N`` starts N such processes (:func:`run_processes`); the parent only prints
progress. SIGTERM to the parent is passed on to its workers, which stop like on Ctrl-C
(their trial failed and queued again at once) before the parent exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

from nst.errors import StyletuneError
from tuner.liveness import orphans
from tuner.records import RECIPE_ATTR, TrialRecord

#: Stop a worker after this many trials in a row failed: something is wrong beyond one config.
MAX_CONSECUTIVE_FAILURES = 5
#: A trial whose worker died more than this many times in a row stays failed (it may be what kills it).
MAX_RETRY = 3
FINISHED = ("COMPLETE", "PRUNED")


class RetryCleanCopy:
    """Queue a copy of a failed trial, with its parameters, for another run (at most ``MAX_RETRY`` times).

    Optuna's ``RetryHeartbeatStaleTrialCallback`` does the same bookkeeping (system
    attributes ``failed_trial`` and ``retry_history``) but its copy inherits *all* the
    dead trial's user attributes: its ``worker_pid``, the ``checkpoints`` judged so far
    (which the early-stop rule compares with other trials), a ``prune_reason`` or
    ``fail_reason`` that would then label the copy's result. Ours keeps only what defines
    the trial: its parameters, the queued ``fixed_params`` and the ``recipe`` label. Used
    both as the storage's stale-trial callback and after Ctrl-C / SIGTERM.
    """

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        self.max_retry = max_retry

    def __call__(self, study, trial) -> None:
        import optuna

        # A trial stopped before it drew any parameter holds nothing to repeat, unless it was a
        # queued one (a recipe), whose parameters wait in ``fixed_params``.
        if trial.state.name != "FAIL" or not (trial.params or "fixed_params" in trial.system_attrs):
            return
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > self.max_retry:
            return
        system = {"failed_trial": trial.system_attrs.get("failed_trial", trial.number), "retry_history": history}
        if "fixed_params" in trial.system_attrs:
            system["fixed_params"] = trial.system_attrs["fixed_params"]
        recipe = TrialRecord.from_trial(trial).recipe
        user = {RECIPE_ATTR: recipe} if recipe else {}
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=trial.params,
                                                  distributions=trial.distributions, user_attrs=user,
                                                  system_attrs=system))


def requeue(study, number: int | None) -> None:
    """Queue a clean copy of trial ``number`` if it failed (the Ctrl-C path)."""
    if number is None:
        return
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None:
        RetryCleanCopy()(study, trial)


def fail_and_requeue(study, pids: set[int]) -> None:
    """Fail and queue again the trials still RUNNING in workers that had to be killed.

    A worker that did not stop within the timeout (a slow step on a loaded machine) never
    got to mark its trial failed; without this its trial would wait for the heartbeat
    grace period of the next run. Uses only ``study.tell`` and the clean-copy retry.
    """
    import optuna

    running = optuna.trial.TrialState.RUNNING
    for t in study.get_trials(deepcopy=False, states=(running,)):
        if TrialRecord.from_trial(t).worker_pid in pids:
            with contextlib.suppress(Exception):  # another process may have finished it meanwhile
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            requeue(study, t.number)


class FailureStreak:
    """Stop the worker after ``limit`` failed trials in a row; :meth:`check` then raises the reason."""

    def __init__(self, limit: int = MAX_CONSECUTIVE_FAILURES) -> None:
        self.limit, self.count, self.reason = limit, 0, ""

    def __call__(self, study, trial) -> None:
        if trial.state.name == "FAIL":
            self.count += 1
            self.reason = TrialRecord.from_trial(trial).fail_reason or ""
            if self.count >= self.limit:
                study.stop()
        else:
            self.count = 0

    def check(self) -> None:
        if self.count >= self.limit:
            raise StyletuneError(f"{self.count} trials in a row failed (last: {self.reason}); "
                                 "check the painting and photos, or try other --networks")


class WaitForSlot:
    """Hold the next trial while finished + live running trials already reach the target.

    ``MaxTrialsCallback`` counts only finished trials, so with several workers each one
    that finishes a trial would start another while the last ones needed are still
    running elsewhere. This waits instead, polling every ``poll`` seconds, until a slot
    frees up (a queued trial appears, such as a copy of a trial whose worker died) or the
    target is reached (then ``MaxTrialsCallback``, which runs next, stops the worker).
    While waiting it fails stale trials (Optuna's ``fail_stale_trials``) and gives orphans
    a heartbeat (:mod:`tuner.liveness`), so a dead worker's trial cannot stall it.
    """

    def __init__(self, target: int, storage, grace: float, poll: float, on_poll=None) -> None:
        self.target, self.storage, self.grace, self.poll, self.on_poll = target, storage, grace, poll, on_poll
        self.adopted: set[int] = set()

    def __call__(self, study, trial=None) -> None:
        self.wait(study)

    def wait(self, study) -> bool:
        """Block until a trial may start (True) or the study has ``target`` finished trials (False)."""
        from tuner.liveness import counts

        while True:
            self._adopt_orphans(study)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fail_stale_trials is marked experimental
                import optuna

                optuna.storages.fail_stale_trials(study)
            c = counts(study)
            if c["finished"] >= self.target:
                return False
            if c["finished"] + c["live"] < self.target or c["WAITING"] > 0:
                return True
            time.sleep(self.poll)
            if self.on_poll is not None:
                self.on_poll()

    def _adopt_orphans(self, study) -> None:
        """Record one heartbeat for each orphan (see :mod:`tuner.liveness`), once per process."""
        if not hasattr(self.storage, "record_heartbeat") or self.storage.get_heartbeat_interval() is None:
            return
        found = [t for t in orphans(study.get_trials(deepcopy=False), self.grace) if t.number not in self.adopted]
        if not found:
            return
        study_id = self.storage.get_study_id_from_name(study.study_name)
        for t in found:
            self.adopted.add(t.number)
            with contextlib.suppress(Exception):  # another worker recorded it at the same moment
                self.storage.record_heartbeat(self.storage.get_trial_id_from_study_id_trial_number(study_id, t.number))


def work(prep, target: int, monitor=None) -> None:
    """Run trials in this process until the study has ``target`` finished trials."""
    import optuna

    from tuner.objective import TrialFailed
    from tuner.storage import GRACE_HEARTBEATS

    study, objective = prep.study, prep.objective
    on_poll = monitor.poll if monitor is not None else None
    gate = WaitForSlot(target, prep.storage, GRACE_HEARTBEATS * prep.options.heartbeat,
                       max(1.0, prep.options.heartbeat / 2), on_poll)
    streak = FailureStreak()
    callbacks: list[Any] = [streak]
    if monitor is not None:
        callbacks.append(lambda _study, _trial: monitor.poll())
    states = tuple(getattr(optuna.trial.TrialState, s) for s in FINISHED)
    callbacks += [gate, optuna.study.MaxTrialsCallback(target, states=states)]
    if not gate.wait(study):
        return
    objective.current = None
    try:
        study.optimize(objective, catch=(TrialFailed,), callbacks=callbacks)
    except KeyboardInterrupt:
        requeue(study, objective.current)
        raise
    streak.check()


# -- processes -------------------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is failed and queued again, and the command says how to resume."""


def raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises :class:`Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_processes(options, study, monitor, child, *, stop_timeout: float = 60.0) -> None:
    """``--jobs N``: N worker processes on the study while this one prints progress.

    Each process runs ``child(options, target, parent_pid)`` (a top-level function, for ``spawn``).

    On Ctrl-C or SIGTERM the workers get SIGINT (each fails and re-queues its running trial),
    are waited for up to ``stop_timeout`` seconds, and any still running then is killed
    (its trial turns stale and is retried by the next run); then the interrupt goes on.
    """
    import multiprocessing as mp
    from dataclasses import replace

    from tuner.liveness import counts

    ctx = mp.get_context("spawn")
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.jobs)
    child_opts = replace(options, threads=threads, quiet=True)
    procs = [ctx.Process(target=child, args=(child_opts, options.trials, os.getpid()), daemon=False)
             for _ in range(options.jobs)]
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            monitor.poll()
    except KeyboardInterrupt:
        with contextlib.suppress(KeyboardInterrupt):  # a second signal while the workers stop
            for p in procs:
                if p.is_alive() and p.pid:
                    os.kill(p.pid, signal.SIGINT)
            deadline = time.monotonic() + stop_timeout
            for p in procs:
                if p.pid is not None:
                    p.join(timeout=max(0.0, deadline - time.monotonic()))
        killed = set()
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
                killed.add(p.pid)
        if killed:
            fail_and_requeue(study, killed)
        raise
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad and counts(study)["finished"] < options.trials:
        raise StyletuneError(f"{len(bad)} worker process(es) stopped with an error (exit {bad[0]}); see the lines above")
