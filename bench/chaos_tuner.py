"""``python -m bench.chaos``'s run against ``tuner search``: kill it at varied moments, rerun, verify the study."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.chaos_common import (
    PHOTOS,
    Child,
    Report,
    check_files,
    count_tmp,
    listing,
    make_inputs,
    nth_new_entry,
    sleep_alive,
    wait_for,
    wal_changes,
)
from tuner.records import FAIL_REASON_ATTR, PRUNE_REASON_ATTR, PRUNED_AT_ATTR, StudyRecord, TrialRecord, trial_records

STUDY = "painting"


def _has_record(study) -> bool:
    """The study exists and ``tuner search`` wrote its record."""
    return study is not None and StudyRecord.from_user_attrs(study.user_attrs) is not None


def tuner_argv(inputs: dict[str, Path], url: str, trials: int, steps: int, proxy: str = "gatys") -> list[str]:
    """The one ``tuner search`` command, run again unchanged after every kill."""
    return [sys.executable, "-m", "tuner.cli", "search", "--style", str(inputs["painting"]), "--content",
            str(inputs["photos"]), "--size", "32", "--steps", str(steps), "--trials", str(trials), "--networks", "tiny",
            "--judge-network", "tiny", "--noise-limit", "10", "--seed", "1", "--no-early-stop", "--heartbeat", "1",
            "--proxy", proxy, "-q", "--storage", url]


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def _open_study(url: str):
    """The study if it exists and has its record (only read while no child runs)."""
    import optuna

    from tuner import reader

    storage = reader.open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if STUDY not in names:
        return storage, None
    return storage, optuna.load_study(study_name=STUDY, storage=storage)


def _dispose(storage) -> None:
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def tuner_phase(url: str, db: Path, tmp_before: set[str], art: Path) -> str:
    """Where a kill landed, read back from what it left behind."""
    new_tmp = {n for n in listing(art) if n.startswith(".")} - tmp_before
    if not db.exists():
        return "start-up (no database yet)"
    storage, study = _open_study(url)
    try:
        if study is None:
            return "creating the study"
        if not _has_record(study):
            return "creating the study (record not written)"
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        if not running:
            return "start-up or between trials"
        t = max(running, key=lambda t: t.number)
        if new_tmp:
            return "mid-artifact-write"
        rec = TrialRecord.from_trial(t)
        if rec.artifacts:
            return "committing a finished trial"
        if any(k.startswith("artifacts:") for k in t.system_attrs):
            return "writing artifacts"
        if rec.style_config is not None:
            return "mid-trial (optimising)"
        return "starting a trial"
    finally:
        _dispose(storage)


def _lineage(t) -> int:
    return int(t.system_attrs.get("failed_trial", t.number))


def verify_study(url: str, db: Path, target: int, report: Report) -> None:
    """The end state a user relies on (see the module docstring)."""
    from nst.config import RECIPES
    from tuner import reader
    from tuner.search import MAX_RETRY

    report.integrity = integrity(db)
    report.check("PRAGMA integrity_check is ok", report.integrity == "ok", report.integrity)
    storage, study = _open_study(url)
    try:
        report.check("the study exists with its record", _has_record(study))
        if study is None:
            return
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state.name for t in trials)
        done = [t for t in trials if t.state.name == "COMPLETE"]
        report.check(f"exactly {target} COMPLETE trials", len(done) == target, f"states {dict(states)}")
        report.check("no trial left RUNNING or WAITING", states["RUNNING"] == 0 and states["WAITING"] == 0,
                     f"states {dict(states)}")
        # Each lineage (a trial and its re-queued copies) finishes once; a trial that was started
        # but neither finished nor re-queued is lost.
        by_line: dict[int, list] = {}
        for t in trials:
            by_line.setdefault(_lineage(t), []).append(t)
        requeued = {h[-1] for t in trials if (h := t.system_attrs.get("retry_history"))}
        lost, dup, given_up = [], [], []
        for root, members in by_line.items():
            finished = [m for m in members if m.state.name == "COMPLETE"]
            if len(finished) > 1:
                dup.append(root)
            for m in members:
                # The retry limit is policy: a trial whose worker died MAX_RETRY + 1 times in a row is
                # probably what kills it (memory), so it stays failed. Counted, not hidden.
                gave_up = len(m.system_attrs.get("retry_history", [])) >= MAX_RETRY
                drew_nothing = not m.params and "fixed_params" not in m.system_attrs
                reason = TrialRecord.from_trial(m).fail_reason or "interrupted"
                if m.state.name == "FAIL" and gave_up and m.number not in requeued:
                    given_up.append(root)
                elif m.state.name == "RUNNING" or (m.state.name == "FAIL" and m.number not in requeued
                                                   and not drew_nothing and reason.startswith("interrupted")):
                    lost.append(m.number)
        params = Counter(json.dumps(t.params, sort_keys=True) for t in done)
        dup_params = sum(n - 1 for n in params.values() if n > 1)
        report.lost = len(lost)
        report.given_up = len(given_up)
        report.duplicated = len(dup) + dup_params
        report.reruns = sum(1 for t in done if "failed_trial" in t.system_attrs)
        report.check("no trial lost (every killed trial re-queued)", not lost, f"trials {lost}")
        report.check("no trial finished twice (by lineage and by parameters)", not dup and not dup_params,
                     f"lineages {dup}, {dup_params} repeated parameter sets")
        twice = sorted({h[-1] for t in trials if (h := t.system_attrs.get("retry_history"))
                        for u in trials if u is not t and u.system_attrs.get("retry_history") == h})
        report.check("every killed trial re-queued exactly once", not twice, f"trials {twice}")
        for t in trials:
            if "failed_trial" in t.system_attrs and t.params:
                # A trial killed while its parameters were being drawn has only some (or none):
                # its copy must match what it had, and all of an enqueued trial's fixed ones.
                first = next(u for u in trials if u.number == t.system_attrs["failed_trial"])
                wanted = {**first.params, **first.system_attrs.get("fixed_params", {})}
                same = all(k in t.params and (t.params[k] == v or (isinstance(v, float) and np.isclose(t.params[k], v)))
                           for k, v in wanted.items())
                report.check(f"re-run {t.number} has the parameters of trial {first.number}", same,
                             f"{t.params} vs {wanted}")
        if target >= len(RECIPES):
            recipes = Counter(r.recipe for r in trial_records(done) if r.recipe)
            stopped = {TrialRecord.from_trial(t).recipe for t in trials if _lineage(t) in given_up}
            report.check("each published recipe finished exactly once (or hit the retry limit)",
                         all(recipes[r] == 1 or (recipes[r] == 0 and r in stopped) for r in RECIPES)
                         and sum(recipes.values()) <= len(RECIPES), f"{dict(recipes)}, retry limit: {stopped - {None}}")
        rec = StudyRecord.from_user_attrs(study.user_attrs)
        ok_style = reader.read_artifact(url, rec.style_artifact) is not None
        report.check("the study's painting artifact is readable", ok_style)
        for t in trial_records(done):
            ids = t.artifacts
            report.check(f"trial {t.number} has scores and all its images", t.scored
                         and set(ids) == {"sheet", *PHOTOS}, f"artifacts {sorted(ids)}")
            for key, aid in ids.items():
                try:
                    img = reader.read_image_artifact(url, aid)
                    good = img.ndim == 3 and img.shape[2] == 3 and (key == "sheet" or img.shape[:2] == (32, 32))
                    report.check(f"trial {t.number} image {key} readable", good, f"shape {img.shape}")
                except Exception as exc:  # noqa: BLE001
                    report.check(f"trial {t.number} image {key} readable", False, f"{exc.__class__.__name__}: {exc}")
            stored = t.to_user_attrs()
            leftovers = sorted(k for k in (FAIL_REASON_ATTR, PRUNED_AT_ATTR, PRUNE_REASON_ATTR) if k in stored)
            report.check(f"trial {t.number} carries nothing from an interrupted run", not leftovers, f"{leftovers}")
    finally:
        _dispose(storage)


def run_tuner(work: Path, kills: int = 10, *, seed: int = 0, trials: int | None = None, steps: int = 8,
              proxy: str = "gatys", log: Callable[[str], None] = print) -> Report:
    """Kill ``tuner search`` ``kills`` times at varied moments, rerun it to the end, verify the study.

    ``proxy`` is the search's ``--proxy``: ``gatys`` (pixel optimisation, the cheaper one at
    these sizes) unless a run asks for the network proxy, the search's own default.
    """
    rng = random.Random(seed)
    inputs = make_inputs(work / "inputs")
    db = work / "studies" / "studies.db"
    url = f"sqlite:///{db}"
    art = db.parent / "artifacts"
    trials = trials or kills + 4
    argv = tuner_argv(inputs, url, trials, steps, proxy)
    report = Report("tuner search")
    started = time.monotonic()
    seen: dict[Path, float] = {}
    modes = itertools.cycle(["trial", "artifact", "commit", "random", "artifact", "trial", "commit"])
    trial_s, boot_s = 3.0, 8.0
    creating_kills = 0
    while report.kills < kills:
        record = False
        if db.exists():
            storage, study = _open_study(url)
            record = _has_record(study)
            _dispose(storage)
        mode = "create" if not record and creating_kills < min(2, kills // 3) else next(modes)
        tmp_before = {n for n in listing(art) if n.startswith(".")}
        child = Child(argv, work, work / "logs" / "tuner", report.runs)
        report.runs += 1
        header = (lambda c=child: f"study '{STUDY}'" in c.stdout())  # noqa: E731 - prepare() is done
        if mode == "create":
            armed = wait_for(child, db.exists, 120) and sleep_alive(child, rng.uniform(0.0, 3.0))
            creating_kills += 1
        elif mode == "trial":
            armed = wait_for(child, header, 120) and sleep_alive(child, rng.uniform(0.2, 2.5 * trial_s))
        elif mode == "artifact":
            armed = wait_for(child, header, 120) and nth_new_entry(child, art, rng.randint(1, 12), 6 * trial_s)
        elif mode == "commit":
            armed = wait_for(child, header, 120) and wait_for(child, wal_changes(db, rng.randint(1, 60)), 8 * trial_s)
        else:
            armed = sleep_alive(child, rng.uniform(0.5, boot_s + 2 * trial_s))
        if armed and child.kill():
            report.kills += 1
            phase = tuner_phase(url, db, tmp_before, art)
            report.phases[phase] += 1
            log(f"  tuner kill {report.kills:2d} ({mode:8s} trigger, {time.monotonic() - child.started:5.1f} s in): {phase}")
        else:
            code = child.wait(600)
            if code != 0:
                report.check(f"run {report.runs} exits 0", False, f"exit {code}: {child.stderr()[-600:]}")
                break
            log(f"  tuner run {report.runs} finished before its {mode} trigger")
            storage, study = _open_study(url)
            finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE") if study else 0
            _dispose(storage)
            if finished >= trials:
                break
        check_files(art, report, seen)
        if db.exists() and report.kills:
            storage, study = _open_study(url)
            if study is not None:
                times = [(t.datetime_complete - t.datetime_start).total_seconds()
                         for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
                trial_s = float(np.median(times)) if times else trial_s
            _dispose(storage)
    report.check(f"{kills} kills delivered before the study finished", report.kills >= kills,
                 f"{report.kills} kills; raise --trials")
    child = Child(argv, work, work / "logs" / "tuner", report.runs)
    report.runs += 1
    code = child.wait(900)
    report.check("the final rerun exits 0", code == 0, f"exit {code}: {child.stderr()[-600:]}")
    check_files(art, report, seen)
    report.stray_tmp = count_tmp(art)
    verify_study(url, db, trials, report)
    report.seconds = time.monotonic() - started
    return report
