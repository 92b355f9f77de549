"""When a RUNNING trial still counts as running: one rule for the tuner and the dashboard.

A trial whose worker dies normally stops sending heartbeats and, after the grace period,
the next worker fails it and queues a copy (Optuna's stale-trial check). Two cases are
not covered by heartbeats, and both are decided here:

* **Orphaned**: Optuna marks a trial RUNNING inside ``study.ask()`` and starts its
  heartbeat thread afterwards, once the sampler has drawn its parameters. A worker killed
  in between leaves a RUNNING trial with no heartbeat at all, which the stale check never
  considers. Such a trial never reached the objective (it has no ``worker_pid``); once it
  is older than the grace period, :func:`orphans` lists it, and the tuner records one
  heartbeat for it so that it turns stale, and is retried, one grace period later. A live
  trial in that state would only get a heartbeat it was about to record itself.
* **Abandoned**: a RUNNING trial older than ten times the median duration of the
  study's finished trials, and at least :data:`MIN_ABANDONED_S`, whatever its
  heartbeats (e.g. one written by a search run without heartbeats). The tuner does not
  wait for it and the dashboard does not show its study as running.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tuner.records import TrialRecord

#: The shortest time after which a RUNNING trial counts as abandoned (seconds).
MIN_ABANDONED_S = 600.0
#: ... or this many times the median duration of the study's completed trials, if longer.
ABANDONED_MEDIANS = 10


def _now_like(stamp: datetime) -> datetime:
    """Now, in the same naive/aware flavour as ``stamp`` (Optuna stores naive local times)."""
    return datetime.now(stamp.tzinfo) if stamp.tzinfo else datetime.now()


def _age(trial: Any, now: datetime | None) -> float | None:
    start = trial.datetime_start
    if start is None:
        return None
    return ((now or _now_like(start)) - start).total_seconds()


def abandoned_after(trials: Iterable[Any]) -> float:
    """Seconds after which a RUNNING trial of this study counts as abandoned."""
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                 if t.state.name == "COMPLETE" and t.datetime_start and t.datetime_complete]
    return max(MIN_ABANDONED_S, ABANDONED_MEDIANS * statistics.median(durations)) if durations else MIN_ABANDONED_S


def live_running(trials: Sequence[Any], now: datetime | None = None) -> list[Any]:
    """The RUNNING trials that are not abandoned (a trial without a start time counts as live)."""
    limit = abandoned_after(trials)
    out = []
    for t in trials:
        if t.state.name != "RUNNING":
            continue
        age = _age(t, now)
        if age is None or age < limit:
            out.append(t)
    return out


def orphans(trials: Iterable[Any], grace: float, now: datetime | None = None) -> list[Any]:
    """RUNNING trials that never reached the objective (no ``worker_pid``) and are older than ``grace`` seconds."""
    out = []
    for t in trials:
        if t.state.name != "RUNNING" or TrialRecord.from_trial(t).worker_pid is not None:
            continue
        age = _age(t, now)
        if age is not None and age > grace:
            out.append(t)
    return out


def counts(study) -> dict[str, int]:
    """Trials by state, plus ``finished`` (complete or stopped early) and ``live`` (running, not abandoned).

    A running trial normally ends or, if its worker died, turns stale through the heartbeat
    and is retried; one running for very long counts as abandoned (see above),
    so waiting for it cannot stall a search.
    """
    from tuner.records import state_counts

    trials = study.get_trials(deepcopy=False)
    out = state_counts(trials)
    out["live"] = len(live_running(trials))
    out["finished"] = out["COMPLETE"] + out["PRUNED"]
    return out
