"""Chaos run: SIGKILL ``tuner search`` and ``trainer fit`` at random moments, rerun, prove nothing is lost.

Searches run overnight and training runs for hours, so sooner or later one is killed
by an out-of-memory killer, a reboot or a closed laptop lid. SIGKILL cannot be caught:
whatever the process was doing (an L-BFGS step, a PNG half written, a SQLite commit)
simply stops. The promise of ``tuner search`` and ``trainer fit`` is that running the
same command again continues as if nothing happened. This script tests that promise
the blunt way: it runs each command in a subprocess, kills it at a random moment, runs
the same command again, and repeats; then it checks what a user would check.

Where the kills land. Pure random delays mostly hit the long phases (Python start-up,
optimising), so the script mixes kill triggers, in turn:

* ``create``: shortly after the study database / run folder appears (creating it);
* ``trial`` / ``steps``: a random time into a trial / into training;
* ``artifact`` / ``checkpoint`` / ``preview``: the moment a new file (or its temporary
  name) appears in the artifact, checkpoint or preview folder, i.e. mid-write or
  between the write and the commit that records it;
* ``commit``: at the k-th change of SQLite's write-ahead log (k random), i.e. just
  after, or in the middle of, a database commit;
* ``random``: anywhere between start-up and two trials in.

After every kill the phase it landed in is read back from the storage, and every file
under its real name is opened (PNG decoded, ``.npz`` arrays loaded, JSON parsed,
``.keras`` zip verified): writes go to a temporary name and are renamed, so none may be
truncated. At the end, for ``tuner search`` (no early stopping, so every finished trial
is COMPLETE): exactly ``--trials`` COMPLETE trials, none RUNNING or WAITING, no two
finished trials with the same parameters, each published recipe finished exactly once,
every killed trial re-run exactly once with its parameters (a trial whose worker died
``MAX_RETRY + 1`` times in a row stays failed by design: that is how a trial that itself
kills its worker is stopped; the table counts these apart), every finished trial's
images readable through :mod:`tuner.reader`, and SQLite's ``PRAGMA integrity_check``
is ``ok``. For ``trainer fit``: every rerun resumes from the newest checkpoint on disk
(never an older one), the metrics hold each step exactly once (1..steps, no gaps), and
the final checkpoint and ``model.keras`` load and stylise a photo.

The networks are the ``tiny`` random ones at 32 px, so a kill-and-rerun cycle costs
mostly Python and TensorFlow start-up (about 8-12 s on 2 cores); the mechanics under
test are the same as with VGG at 256 px.

Usage::

    python -m bench.chaos                              # 10 kills of each command; about 5 min on 2 cores
    python -m bench.chaos --kills 20 --seed 7          # more kills, another random schedule
    python -m bench.chaos --only tuner --kills 3 --keep /tmp/chaos   # keep the folders to look at
    python -m bench.chaos --json chaos.json            # the reports as JSON as well

Exit status 0 when every check passed, 1 when any failed (each failure is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STUDY = "painting"
RUN = "chaos"
PHOTOS = ("p0", "p1")


# -- reports -------------------------------------------------------------------------------------

@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """What one chaos run did and found; ``ok`` only if every check passed."""

    command: str
    kills: int = 0
    runs: int = 0
    phases: Counter = field(default_factory=Counter)
    reruns: int = 0        # tuner: killed trials run again; trainer: resumes from a checkpoint
    lost: int = 0          # tuner: trials started and never finished nor re-queued; trainer: steps missing
    duplicated: int = 0    # tuner: finished twice; trainer: metric rows of one step written twice
    redone: int = 0        # trainer: steps trained again because they came after the last checkpoint
    given_up: int = 0      # tuner: trials killed more than MAX_RETRY times in a row, failed by design
    files_checked: int = 0
    stray_tmp: int = 0
    integrity: str = "-"
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(what, bool(ok), detail))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and self.lost == 0 and self.duplicated == 0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["phases"] = dict(self.phases)
        out["ok"] = self.ok
        return out


# -- inputs ----------------------------------------------------------------------------------------

# The same synthetic pictures the unit tests use (deterministic per seed).
from nst.testing import synthetic_painting as _painting  # noqa: E402
from nst.testing import synthetic_photo as _photo  # noqa: E402


def make_inputs(folder: Path) -> dict[str, Path]:
    """Painting, two test photos, a training folder, a preview photo and a tiny StyleConfig JSON."""
    from nst.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    out = {"painting": save_image(folder / "painting.png", _painting(64))}
    for i, name in enumerate(PHOTOS):
        save_image(folder / "photos" / f"{name}.png", _photo(40, seed=i))
    out["photos"] = folder / "photos"
    for i in range(6):
        save_image(folder / "data" / f"d{i}.png", _photo(48, seed=10 + i, width=56))
    out["data"] = folder / "data"
    out["look"] = save_image(folder / "look.png", _photo(40, seed=9))
    from nst.config import StyleConfig

    tiny = StyleConfig(network="tiny", pooling="avg", content_layer="conv2",  # the tests' TINY_CONFIG
                       style_layers=(("conv1", 1.0), ("conv2", 1.0), ("conv3", 1.0)), content_weight=1.0,
                       style_weight=1e-2, tv_weight=1.0)
    (folder / "cfg.json").write_text(tiny.to_json())
    out["cfg"] = folder / "cfg.json"
    return out


def tuner_argv(inputs: dict[str, Path], url: str, trials: int, steps: int) -> list[str]:
    """The one ``tuner search`` command, run again unchanged after every kill."""
    return [sys.executable, "-m", "tuner.cli", "search", "--style", str(inputs["painting"]), "--content",
            str(inputs["photos"]), "--size", "32", "--steps", str(steps), "--trials", str(trials), "--networks", "tiny",
            "--judge-network", "tiny", "--noise-limit", "10", "--seed", "1", "--no-early-stop", "--heartbeat", "1",
            "-q", "--storage", url]


def trainer_argv(inputs: dict[str, Path], runs: Path, steps: int, every: int) -> list[str]:
    """The one ``trainer fit`` command (a new run the first time, a resume afterwards)."""
    return [sys.executable, "-m", "trainer.cli", "fit", "--config", str(inputs["cfg"]), "--style",
            str(inputs["painting"]), "--preview", str(inputs["look"]), "--data", str(inputs["data"]), "--runs-dir",
            str(runs), "--name", RUN, "--steps", str(steps), "--checkpoint-every", str(every), "--preview-every",
            str(every * 2), "--keep-checkpoints", "3", "--size", "32", "--batch", "2", "--width", "0.125", "--recipe", "paper", "-q"]


# -- child processes ---------------------------------------------------------------------------

class Child:
    """One run of the command, its output in files (a full pipe must never stall it)."""

    def __init__(self, argv: list[str], cwd: Path, logs: Path, index: int):
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / f"run{index:02d}.out", logs / f"run{index:02d}.err"
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env=env)
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self) -> bool:
        """SIGKILL; True when the signal, not a normal exit, ended the process."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.proc.returncode == -signal.SIGKILL

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def wait_for(child: Child, fired: Callable[[], bool], timeout: float, poll: float = 0.002) -> bool:
    """Poll ``fired`` every ``poll`` s while the child lives; True if it fired (child still running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not child.alive():
            return False
        try:
            if fired():
                return child.alive()
        except OSError:
            pass
        time.sleep(poll)
    return child.alive()


def sleep_alive(child: Child, seconds: float) -> bool:
    return wait_for(child, lambda: False, seconds, poll=0.01) if seconds > 0 else child.alive()


def new_entry(folder: Path, before: set[str], match: Callable[[str], bool] = lambda n: True) -> Callable[[], bool]:
    """A trigger: a file not in ``before`` (a temporary name counts) appeared in ``folder``."""
    def fired() -> bool:
        if not folder.is_dir():
            return False
        return any(match(e.name) and e.name not in before for e in os.scandir(folder))
    return fired


def nth_new_entry(child: Child, folder: Path, n: int, timeout: float) -> bool:
    """Wait for the ``n``-th new file in ``folder`` (each trial writes three images: n > 3 is a later trial)."""
    for _ in range(n):
        if not wait_for(child, new_entry(folder, listing(folder)), timeout):
            return False
    return child.alive()


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


def wal_changes(db: Path, count: int) -> Callable[[], bool]:
    """A trigger: the SQLite write-ahead log changed ``count`` times (each change is a commit in progress or done)."""
    wal = Path(str(db) + "-wal")
    state = {"last": None, "seen": 0}

    def fired() -> bool:
        try:
            st = wal.stat()
            now = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            now = None
        if now != state["last"]:
            if state["last"] is not None and now is not None:
                state["seen"] += 1
            state["last"] = now
        return state["seen"] >= count
    return fired


# -- file checks -----------------------------------------------------------------------------------

def readable(path: Path) -> str | None:
    """None when ``path`` opens completely as what its name says, else why not."""
    from PIL import Image

    try:
        data = path.read_bytes()
        if not data:
            return "empty"
        if data[:8] == b"\x89PNG\r\n\x1a\n" or path.suffix == ".png":
            with Image.open(path) as im:
                im.load()
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                for k in z.files:
                    z[k]
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad:
                    return f"corrupt member {bad}"
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{exc.__class__.__name__}: {exc}"


def check_files(root: Path, report: Report, seen: dict[Path, float]) -> None:
    """Open every file under its real name below ``root``; temporary (dot) names are only counted."""
    if not root.exists():
        return
    for path in root.rglob("*"):
        if not path.is_file() or path.name == "metrics.jsonl" or path.suffix in (".db", ".db-wal", ".db-shm"):
            continue
        if path.name.startswith(".") or any(part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue
        mtime = path.stat().st_mtime_ns
        if seen.get(path) == mtime:
            continue
        why = readable(path)
        report.check(f"{path.relative_to(root)} readable under its real name", why is None, why or "")
        seen[path] = mtime
    report.files_checked = len(seen)


def count_tmp(root: Path) -> int:
    """Leftovers of writes a kill interrupted: hidden temporary files and staging folders."""
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob(".*") if p.is_file() or p.is_dir())


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


# -- tuner search --------------------------------------------------------------------------------

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
        if "styletune" not in study.user_attrs:
            return "creating the study (record not written)"
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        if not running:
            return "start-up or between trials"
        t = max(running, key=lambda t: t.number)
        if new_tmp:
            return "mid-artifact-write"
        if "artifacts" in t.user_attrs:
            return "committing a finished trial"
        if any(k.startswith("artifacts:") for k in t.system_attrs):
            return "writing artifacts"
        if "style_config" in t.user_attrs:
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
        report.check("the study exists with its record", study is not None and "styletune" in study.user_attrs)
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
                reason = str(m.user_attrs.get("fail_reason", "interrupted"))
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
            recipes = Counter(t.user_attrs.get("recipe") for t in done if t.user_attrs.get("recipe"))
            stopped = {t.user_attrs.get("recipe") for t in trials if _lineage(t) in given_up}
            report.check("each published recipe finished exactly once (or hit the retry limit)",
                         all(recipes[r] == 1 or (recipes[r] == 0 and r in stopped) for r in RECIPES)
                         and sum(recipes.values()) <= len(RECIPES), f"{dict(recipes)}, retry limit: {stopped - {None}}")
        rec = study.user_attrs["styletune"]
        ok_style = reader.read_artifact(url, rec["style_artifact"]) is not None
        report.check("the study's painting artifact is readable", ok_style)
        for t in done:
            ua = t.user_attrs
            ids = ua.get("artifacts") or {}
            report.check(f"trial {t.number} has scores and all its images", isinstance(ua.get("scores"), dict)
                         and set(ids) == {"sheet", *PHOTOS}, f"artifacts {sorted(ids)}")
            for key, aid in ids.items():
                try:
                    img = reader.read_image_artifact(url, aid)
                    good = img.ndim == 3 and img.shape[2] == 3 and (key == "sheet" or img.shape[:2] == (32, 32))
                    report.check(f"trial {t.number} image {key} readable", good, f"shape {img.shape}")
                except Exception as exc:  # noqa: BLE001
                    report.check(f"trial {t.number} image {key} readable", False, f"{exc.__class__.__name__}: {exc}")
            leftovers = sorted(k for k in ("fail_reason", "pruned_at", "prune_reason") if k in ua)
            report.check(f"trial {t.number} carries nothing from an interrupted run", not leftovers, f"{leftovers}")
    finally:
        _dispose(storage)


def run_tuner(work: Path, kills: int = 10, *, seed: int = 0, trials: int | None = None, steps: int = 8,
              log: Callable[[str], None] = print) -> Report:
    """Kill ``tuner search`` ``kills`` times at varied moments, rerun it to the end, verify the study."""
    rng = random.Random(seed)
    inputs = make_inputs(work / "inputs")
    db = work / "studies" / "studies.db"
    url = f"sqlite:///{db}"
    art = db.parent / "artifacts"
    trials = trials or kills + 4
    argv = tuner_argv(inputs, url, trials, steps)
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
            record = study is not None and "styletune" in study.user_attrs
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


# -- trainer fit -------------------------------------------------------------------------------------

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
        stylizer, info = load_stylizer(str(run), str(runs))
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


# -- main ------------------------------------------------------------------------------------------------

def table(reports: list[Report]) -> str:
    from bench.common import format_table

    rows = []
    for r in reports:
        tuner = r.command.startswith("tuner")
        rows.append([r.command, r.kills, r.runs, r.reruns, r.lost, r.duplicated, r.given_up if tuner else "-",
                     "-" if tuner else r.redone, r.files_checked, r.stray_tmp, r.integrity, round(r.seconds),
                     "PASS" if r.ok else "FAIL"])
    return format_table(["command", "kills", "runs", "re-run / resumed", "lost", "duplicated", "retry limit hit",
                         "steps redone", "files checked", "stray tmp", "integrity", "seconds", "result"], rows)


def phase_table(reports: list[Report]) -> str:
    from bench.common import format_table

    rows = [[r.command, phase, n] for r in reports for phase, n in sorted(r.phases.items(), key=lambda kv: -kv[1])]
    return format_table(["command", "where the kill landed", "kills"], rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs per command (default 10)")
    p.add_argument("--tuner-kills", type=int, help="override --kills for tuner search")
    p.add_argument("--trainer-kills", type=int, help="override --kills for trainer fit")
    p.add_argument("--only", choices=("tuner", "trainer"), help="run one command only")
    p.add_argument("--trials", type=int, help="study target (default kills + 4)")
    p.add_argument("--steps", type=int, default=8, help="L-BFGS steps per trial (default 8)")
    p.add_argument("--train-steps", type=int, help="training steps (default max(300, 120 x kills))")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill schedule (default 0)")
    p.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder, removed)")
    p.add_argument("--json", help="also write the reports to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    import shutil

    args = build_parser().parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="styletune-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    reports = []
    try:
        if args.only in (None, "tuner"):
            n = args.tuner_kills if args.tuner_kills is not None else args.kills
            print(f"tuner search: {n} kills (study in {work / 'tuner'})", flush=True)
            reports.append(run_tuner(work / "tuner", n, seed=args.seed, trials=args.trials, steps=args.steps))
        if args.only in (None, "trainer"):
            n = args.trainer_kills if args.trainer_kills is not None else args.kills
            print(f"trainer fit: {n} kills (run in {work / 'trainer'})", flush=True)
            reports.append(run_trainer(work / "trainer", n, seed=args.seed, steps=args.train_steps,
                                       every=args.checkpoint_every))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(reports))
    print()
    print(phase_table(reports))
    for r in reports:
        for c in r.failures:
            print(f"FAIL {r.command}: {c.what}" + (f" ({c.detail})" if c.detail else ""))
        print(f"{r.command}: {len(r.checks)} checks, {len(r.failures)} failed")
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
