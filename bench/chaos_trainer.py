"""``python -m bench.chaos``'s run against ``trainer fit``: kill it at varied moments, rerun, verify the run."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.chaos_common import (
    Child,
    Report,
    check_files,
    count_tmp,
    listing,
    make_inputs,
    new_entry,
    sleep_alive,
    wait_for,
)
from nst.testing import synthetic_photo as _photo

RUN = "chaos"


def trainer_argv(inputs: dict[str, Path], runs: Path, steps: int, every: int) -> list[str]:
    """The one ``trainer fit`` command (a new run the first time, a resume afterwards)."""
    return [sys.executable, "-m", "trainer.cli", "fit", "--config", str(inputs["cfg"]), "--style",
            str(inputs["painting"]), "--preview", str(inputs["look"]), "--data", str(inputs["data"]), "--runs-dir",
            str(runs), "--name", RUN, "--steps", str(steps), "--checkpoint-every", str(every), "--preview-every",
            str(every * 2), "--keep-checkpoints", "3", "--size", "32", "--batch", "2", "--width", "0.125", "--recipe", "paper", "-q"]


_RESUME_RE = re.compile(rf"resuming run {RUN} at step (\d+)")


def _ckpts(run: Path) -> list[int]:
    folder = run / "checkpoints"
    return sorted(int(m.group(1)) for n in listing(folder) if (m := re.fullmatch(r"step_(\d{6,})\.npz", n)))


def _metric_steps(run: Path) -> tuple[list[int], int]:
    """Steps in ``metrics.jsonl`` and the number of torn (undecodable) lines."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return [], 0
    steps, torn = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            steps.append(int(json.loads(line)["step"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            torn += 1
    return steps, torn


def _hidden(folder: Path) -> set[str]:
    return {n for n in listing(folder) if n.startswith(".")}


def trainer_phase(run: Path, runs: Path, before: dict[str, Any]) -> str:
    """Where a kill landed, from what it left behind (``before``: the state when the run started)."""
    if not (run / "run.json").exists():
        return "creating the run folder" if _hidden(runs) - before["staging"] else "start-up (no run folder yet)"
    if _hidden(run / "checkpoints") - before["ckpt_tmp"]:
        return "mid-checkpoint-write"
    if _hidden(run / "previews") - before["preview_tmp"]:
        return "mid-preview-write"
    if _hidden(run) - before["run_tmp"]:
        return "writing model.keras or metrics"
    if (run / "model.keras").exists() or (run / "results").exists():
        return "finishing (results, model, scores)"
    ck = _ckpts(run)
    if ck and ck[-1] not in before["ckpts"] and _last_step(run) == ck[-1]:
        return "just after a checkpoint"
    if _metrics_id(run) != before["metrics_id"] and _last_step(run) > (before["ckpts"] or [0])[-1]:
        return "mid-epoch (training)"
    return "start-up (loading the run)"


def _metrics_id(run: Path) -> tuple[int, int] | None:
    """Inode and size of ``metrics.jsonl``: a resume rewrites it (new inode), training appends (size)."""
    try:
        st = (run / "metrics.jsonl").stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size


def _last_step(run: Path) -> int:
    """The step of the last complete row of ``metrics.jsonl`` (reads only its tail)."""
    path = run / "metrics.jsonl"
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            tail = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return 0
    for line in reversed(tail.splitlines()):
        try:
            return int(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return 0


def run_trainer(work: Path, kills: int = 10, *, seed: int = 0, steps: int | None = None, every: int = 50,
                log: Callable[[str], None] = print) -> Report:
    """Kill ``trainer fit`` ``kills`` times at varied moments, rerun it to the end, verify the run."""
    from trainer.export import load_keras
    from trainer.runs import RunFolder
    from trainer.stylize import load_stylizer

    rng = random.Random(seed + 1)
    inputs = make_inputs(work / "inputs")
    runs = work / "runs"
    run = runs / RUN
    steps = steps or max(300, 120 * kills)
    argv = trainer_argv(inputs, runs, steps, every)
    report = Report("trainer fit")
    started = time.monotonic()
    seen: dict[Path, float] = {}
    modes = itertools.cycle(["checkpoint", "steps", "preview", "random", "checkpoint", "steps"])
    creating_kills = 0
    boot_s = 12.0

    def check_resume(child: Child, expected: int | None) -> None:
        m = _RESUME_RE.search(child.stderr())
        if expected is None:  # no run folder: the rerun starts a new run
            report.check(f"run {report.runs}: starts a new run when none exists",
                         m is None, child.stderr()[-300:])
            return
        if m is None:
            if child.alive() or child.proc.returncode == -signal.SIGKILL:
                return  # killed before it printed where it resumes; checked on the next run
            report.check(f"run {report.runs}: says where it resumes", False, child.stderr()[-300:])
            return
        got = int(m.group(1))
        report.reruns += 1
        report.check(f"run {report.runs}: resumes from the newest checkpoint (step {expected})", got == expected,
                     f"resumed at step {got}")

    while report.kills < kills:
        exists = (run / "run.json").exists()
        mode = "create" if not exists and creating_kills < min(2, kills // 3) else next(modes)
        expected = (_ckpts(run) or [0])[-1] if exists else None
        before = {"ckpts": _ckpts(run), "staging": _hidden(runs), "ckpt_tmp": _hidden(run / "checkpoints"),
                  "preview_tmp": _hidden(run / "previews"), "run_tmp": _hidden(run), "metrics_id": _metrics_id(run)}
        child = Child(argv, work, work / "logs" / "trainer", report.runs)
        report.runs += 1
        start_step = expected or 0

        def training(ino: int | None = (before["metrics_id"] or (None,))[0], start: int = start_step) -> bool:
            # Training has begun: metrics.jsonl was rewritten by this run (a resume truncates it
            # to its checkpoint, under a new inode) and has rows beyond the step it started from.
            now = _metrics_id(run)
            return now is not None and now[0] != ino and _last_step(run) > start
        if mode == "create":
            armed = wait_for(child, runs.exists, 120) and sleep_alive(child, rng.uniform(0.0, 1.5))
            creating_kills += 1
        elif mode == "steps":
            armed = wait_for(child, training, 120) and sleep_alive(child, rng.uniform(0.0, 2.0))
        elif mode == "checkpoint":
            folder = run / "checkpoints"
            armed = wait_for(child, training, 120) and wait_for(child, new_entry(folder, listing(folder)), 30)
        elif mode == "preview":
            folder = run / "previews"
            armed = wait_for(child, training, 120) and wait_for(child, new_entry(folder, listing(folder)), 30)
        else:
            armed = sleep_alive(child, rng.uniform(1.0, boot_s + 3.0))
        killed = armed and child.kill()
        if not killed:
            child.wait(600)
        check_resume(child, expected)
        if killed:
            report.kills += 1
            phase = trainer_phase(run, runs, before)
            report.phases[phase] += 1
            after = _ckpts(run)
            if exists:
                report.check(f"kill {report.kills}: no checkpoint lost", (after or [0])[-1] >= (expected or 0),
                             f"newest was {expected}, now {after}")
                report.redone += max(0, max(_metric_steps(run)[0], default=0) - (after or [0])[-1])
            log(f"  trainer kill {report.kills:2d} ({mode:10s} trigger, {time.monotonic() - child.started:5.1f} s in): "
                f"{phase}; checkpoints {after[-3:] if after else []}")
        else:
            log(f"  trainer run {report.runs} ended (exit {child.proc.returncode}) before its {mode} trigger")
            if child.proc.returncode != 0:
                report.check(f"run {report.runs} exits 0", False, child.stderr()[-600:])
                break
            if (_ckpts(run) or [0])[-1] >= steps:
                break
        check_files(run, report, seen)
    report.check(f"{kills} kills delivered before training finished", report.kills >= kills,
                 f"{report.kills} kills; raise --train-steps")
    expected = (_ckpts(run) or [0])[-1] if (run / "run.json").exists() else None
    child = Child(argv, work, work / "logs" / "trainer", report.runs)
    report.runs += 1
    code = child.wait(900)
    report.check("the final rerun exits 0", code == 0, f"exit {code}: {child.stderr()[-600:]}")
    check_resume(child, expected)
    report.check("the final rerun reports the finished step", f"trained {RUN} to step {steps}" in child.stdout(),
                 child.stdout()[-300:])
    check_files(run, report, seen)
    report.stray_tmp = count_tmp(run) + sum(1 for n in listing(runs) if n.startswith("."))
    got, torn = _metric_steps(run)
    counts = Counter(got)
    report.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    report.lost = len(set(range(1, steps + 1)) - set(got))
    report.check("metrics hold every step 1..steps exactly once", got == list(range(1, steps + 1)),
                 f"{len(got)} rows, {report.duplicated} duplicated, {report.lost} missing, {torn} torn")
    report.check("the final checkpoint is the last step", (_ckpts(run) or [0])[-1] == steps, f"{_ckpts(run)}")
    try:
        saved, weights, opt = RunFolder(run).load_checkpoint()
        report.check("the final checkpoint loads", saved == steps and len(weights) > 0 and len(opt) > 0)
        stylizer, _, _ = load_stylizer(str(run), str(runs))
        out = stylizer(_photo(40, seed=3))
        report.check("the trained network stylises a photo", out.shape == (40, 40, 3) and bool(np.isfinite(out).all()))
        model = load_keras(run / "model.keras")
        report.check("model.keras loads (safe mode)", len(model.get_weights()) == len(weights))
    except Exception as exc:  # noqa: BLE001
        report.check("the final run loads", False, f"{exc.__class__.__name__}: {exc}")
    scores = json.loads((run / "scores.json").read_text()) if (run / "scores.json").exists() else {}
    report.check("scores.json holds the judge's scores", "trained" in scores, f"{sorted(scores)}")
    report.seconds = time.monotonic() - started
    return report
