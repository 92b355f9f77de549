"""Crashes: SIGKILL at random moments loses nothing (``bench/chaos.py``), and the corner cases it found.

The slow tests run the chaos script with a few kills of ``tuner search`` and ``trainer
fit`` (the full run, ``python -m bench.chaos``, does 10 of each; docs/reliability.md).
The fast tests pin down, deterministically, the crash windows the chaos runs exposed:

* a run killed after the study's record was written but before (or while) the published
  recipes were queued: the next run must queue the missing ones;
* a worker killed after ``study.ask()`` marked a trial RUNNING but before Optuna's first
  heartbeat: the trial must still be failed and re-run, not wait forever;
* a worker SIGKILLed mid-trial: once its heartbeats have been missing for the grace
  period, another worker fails the trial and runs a copy that carries none of the dead
  attempt's attributes (slow: the killed worker is a real process);
* a study resumed with ``--seed``: the new process must not replay the parameters the
  seeded sampler drew in the first process;
* an exception in the middle of writing an artifact or a checkpoint leaves neither a
  truncated file under the real name nor a temporary file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nst.config import RECIPES
from nst.images import save_image
from tests.conftest import synthetic_painting, synthetic_photo
from tuner import reader

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _options(folder: Path, **kw):
    from tuner.search import SearchOptions

    painting = save_image(folder / "painting.png", synthetic_painting(64))
    for i in range(2):
        save_image(folder / "photos" / f"p{i}.png", synthetic_photo(40, seed=i))
    base = {"style": str(painting), "content": (str(folder / "photos"),), "size": 32, "steps": 5, "trials": 3,
            "storage": f"sqlite:///{folder / 'studies' / 'studies.db'}", "networks": ("tiny",),
            "judge_network": "tiny", "noise_limit": 10.0, "seed": 1, "quiet": True, "prune": False,
            "proxy": "gatys"}  # these tests are about storage and liveness, not the proxy: the cheaper one
    return SearchOptions(**{**base, **kw})


def _study(options):
    return optuna.load_study(study_name="painting", storage=reader.open_storage(options.storage))


# -- the chaos script, briefly ---------------------------------------------------------------

def _explain(report) -> str:
    return "; ".join(f"{c.what} ({c.detail})" for c in report.failures) or "lost/duplicated counts"


@pytest.mark.slow
def test_tuner_search_killed_three_times_loses_no_trial(tmp_path):
    from bench.chaos import run_tuner

    report = run_tuner(tmp_path, kills=3, seed=3, trials=5, log=lambda line: None)
    assert report.kills == 3
    assert report.ok, _explain(report)
    assert report.lost == 0 and report.duplicated == 0 and report.integrity == "ok"
    assert report.files_checked > 0


@pytest.mark.slow
def test_trainer_fit_killed_twice_resumes_from_its_newest_checkpoint(tmp_path):
    from bench.chaos import run_trainer

    report = run_trainer(tmp_path, kills=2, seed=3, steps=200, log=lambda line: None)
    assert report.kills == 2
    assert report.ok, _explain(report)
    assert report.reruns >= 1  # at least one run resumed and said from which step
    assert report.lost == 0 and report.duplicated == 0


# -- crash windows, reproduced without a kill ----------------------------------------------------

@pytest.mark.parametrize("queued_before_kill", [0, 1, 2])
def test_a_run_killed_while_queuing_the_recipes_gets_them_all_queued_by_the_next_run(tmp_path, monkeypatch,
                                                                                      queued_before_kill):
    import tuner.search as search

    real = search._seed_recipes

    def killed_midway(study, space):
        from tuner.space import recipe_params

        for name in list(RECIPES)[:queued_before_kill]:
            study.enqueue_trial(recipe_params(RECIPES[name], space)[0], user_attrs={"recipe": name})
        raise KeyboardInterrupt  # stands in for SIGKILL: the process ends here

    options = _options(tmp_path)
    monkeypatch.setattr(search, "_seed_recipes", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        search.prepare(options)
    assert reader.study_record(_study(options))  # the record was written before the "kill"

    monkeypatch.setattr(search, "_seed_recipes", real)
    prep = search.prepare(options)
    assert not prep.created
    study = _study(options)
    queued = [t.user_attrs.get("recipe") for t in study.get_trials()]
    assert sorted(queued) == sorted(RECIPES), queued  # each recipe exactly once
    assert all(t.state.name == "WAITING" for t in study.get_trials())
    assert len(prep.seeded) == len(RECIPES) - queued_before_kill


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the bare ask() below is the point
def test_a_trial_orphaned_before_its_first_heartbeat_is_failed_and_run_again(tmp_path):
    from tuner.search import prepare, work

    options = _options(tmp_path, heartbeat=1)
    prep = prepare(options)
    # What a worker killed inside study.ask() leaves: the first recipe popped from the queue
    # and marked RUNNING, no heartbeat ever recorded, no parameter drawn.
    orphan = prep.study.ask()
    assert orphan.number == 0 and prep.study.trials[0].state.name == "RUNNING"
    time.sleep(5.5)  # older than the grace period (4 heartbeats; SQLite stamps whole seconds)

    worker = threading.Thread(target=work, args=(prep, 3), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the search waited on a trial no one runs"
    study = _study(options)
    states = {t.number: t.state.name for t in study.trials}
    assert states[0] == "FAIL" and "RUNNING" not in states.values() and "WAITING" not in states.values()
    rerun = [t for t in study.trials if t.system_attrs.get("failed_trial") == 0]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE"
    assert rerun[0].user_attrs["recipe"] == "tf_tutorial"
    assert rerun[0].params == study.trials[0].system_attrs["fixed_params"]
    done = [t.user_attrs.get("recipe") for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(done) == sorted(RECIPES)  # no recipe lost, none twice


@pytest.mark.slow
def test_a_worker_killed_mid_trial_has_its_trial_rerun_clean_by_another_worker_after_the_grace_period(tmp_path):
    import dataclasses
    import datetime as dt
    import os
    import signal
    import subprocess
    import sys

    from tuner.objective import Objective
    from tuner.search import prepare, work

    options = _options(tmp_path, heartbeat=1, steps=60)  # grace period: 4 s
    cli = [sys.executable, "-m", "tuner.cli", "search", "--style", options.style, "--content", *options.content,
           "--size", "32", "--steps", "60", "--trials", "3", "--networks", "tiny", "--judge-network", "tiny",
           "--noise-limit", "10", "--seed", "1", "--no-early-stop", "--heartbeat", "1", "--proxy", "gatys",
           "-q", "--storage", options.storage]
    first = subprocess.Popen(cli, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # trial 0 past its start: parameters drawn, checkpoints and worker pid recorded
            assert first.poll() is None, f"the first worker exited ({first.returncode}): {first.stderr.read()}"
            assert time.monotonic() < deadline, "the first worker never got into a trial"
            try:
                trials = _study(options).trials
            except (reader.StorageError, KeyError):
                trials = []
            if trials and trials[0].state.name == "RUNNING" and "worker_pid" in trials[0].user_attrs:
                break
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = dt.datetime.now()
    dead = _study(options).trials[0]
    assert dead.state.name == "RUNNING" and dead.user_attrs["worker_pid"] == first.pid
    assert {"style_config", "checkpoints"} <= set(dead.user_attrs)

    class Spy(Objective):  # notes what each trial holds when this worker starts running it
        def __call__(self, trial):
            starts[trial.number] = dict(trial.user_attrs)
            return super().__call__(trial)

    starts: dict[int, dict] = {}
    second = prepare(options)
    second.objective = Spy(**{f.name: getattr(second.objective, f.name) for f in dataclasses.fields(Objective)})
    worker = threading.Thread(target=work, args=(second, 3), daemon=True)
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive(), "the second worker never finished the study"

    study = _study(options)
    assert study.trials[0].state.name == "FAIL"
    reruns = [t for t in study.trials if t.system_attrs.get("failed_trial") == 0]
    assert len(reruns) == 1 and reruns[0].state.name == "COMPLETE"
    rerun = reruns[0]
    assert rerun.params == dead.params and rerun.system_attrs["retry_history"] == [0]
    # Failed only once the heartbeats had been missing for the grace period (SQLite stamps whole seconds).
    assert rerun.datetime_start >= killed_at + dt.timedelta(seconds=3)
    # The copy started with nothing of the dead attempt but its recipe label.
    inherited = starts[rerun.number]
    assert inherited == {"recipe": dead.user_attrs["recipe"]}, inherited
    assert rerun.user_attrs["worker_pid"] == os.getpid() != first.pid
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states and "WAITING" not in states


def test_a_seeded_search_resumed_in_a_new_process_does_not_replay_its_parameters(tmp_path):
    from tuner.search import prepare, work

    options = _options(tmp_path)  # --seed 1
    first = prepare(options)
    assert first.created
    work(first, 4)  # the three recipes, then one trial the seeded sampler drew
    # A new process (a rerun after a crash, a --jobs worker, another terminal) starts a new sampler.
    second = prepare(options)
    assert not second.created
    work(second, 6)
    study = _study(options)
    drawn = [t for t in study.trials if not t.user_attrs.get("recipe") and t.state.name == "COMPLETE"]
    assert len(drawn) == 3
    params = [tuple(sorted(t.params.items())) for t in drawn]
    assert len(set(params)) == len(params), "a resumed seeded search repeated a trial"


def test_a_new_seeded_search_is_still_reproducible(tmp_path):
    from tuner.search import prepare, work

    results = []
    for name in ("a", "b"):
        prep = prepare(_options(tmp_path / name, trials=4))
        work(prep, 4)
        study = _study(prep.options)
        results.append([t.params for t in study.trials if not t.user_attrs.get("recipe")])
    assert results[0] == results[1] and len(results[0]) == 1


class _Exploding:
    """A byte stream that fails after its first chunk, as a full disk or a crash would."""

    def __init__(self):
        self.calls = 0

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise OSError(28, "No space left on device")
        return b"\x89PNG\r\n\x1a\n" + b"x" * 100


def test_an_interrupted_artifact_write_leaves_no_file_under_its_id(tmp_path):
    from tuner.study import atomic_store

    store = atomic_store(tmp_path / "artifacts")
    with pytest.raises(OSError):
        store.write("0123abcd-feed", _Exploding())
    assert list((tmp_path / "artifacts").iterdir()) == []  # no truncated artifact, no temporary file


def test_an_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from trainer.runs import RunFolder

    run = RunFolder(tmp_path / "run")
    weights = [np.ones((3, 3), np.float32)]
    run.save_checkpoint(10, weights, [np.zeros(2, np.float32)])

    def savez_then_crash(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError):
        run.save_checkpoint(20, [w * 2 for w in weights], [np.zeros(2, np.float32)])
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["step_000010.npz"]
    step, model, _ = run.load_checkpoint()
    assert step == 10 and np.array_equal(model[0], weights[0])


def test_a_resumed_run_removes_the_temporary_files_killed_writes_left(tmp_path):
    import os

    from trainer.runs import RunFolder

    run = RunFolder(tmp_path / "run")
    real = run.save_checkpoint(10, [np.ones(2, np.float32)], [np.zeros(1, np.float32)])
    run.previews.mkdir()
    old = [run.checkpoints / ".ckpt.abc123.npz", run.path / ".model.xyz.keras", run.previews / ".step_000010.png.q1.tmp"]
    fresh = run.checkpoints / ".ckpt.now.npz"  # as if another process were writing it right now
    for p in [*old, fresh]:
        p.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for p in old:
        os.utime(p, (an_hour_ago, an_hour_ago))
    assert run.remove_leftovers() == len(old)
    assert not any(p.exists() for p in old) and fresh.exists() and real.exists()
    assert run.load_checkpoint()[0] == 10
