"""dashboard.data: study → DataFrames, artifacts → images, run folders → frames (no Streamlit)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest

from dashboard import data, pictures, training
from tests.studyfactory import make_run, make_study
from tuner.reader import CHOSEN_ATTR, StorageError, load_study, open_storage, read_artifact


@pytest.fixture(scope="module")
def study_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studies")
    return make_study(f"sqlite:///{folder}/studies.db", n_complete=6, n_pruned=2, n_fail=1, n_running=1)


@pytest.fixture
def study(study_url):
    return load_study(open_storage(study_url), "fixture")


# --------------------------------------------------------------------------- pareto
def _dominated(p, others) -> bool:
    return any(o[0] <= p[0] and o[1] <= p[1] and o != p for o in others)


# --------------------------------------------------------------------------- trials
def test_trials_frame_reads_the_contract(study):
    df = data.study_frame(study, chosen=3)
    assert df["number"].tolist() == list(range(10))
    assert df["state"].value_counts().to_dict() == {"COMPLETE": 6, "PRUNED": 2, "FAIL": 1, "RUNNING": 1}
    done = df[df["state"] == "COMPLETE"]
    assert done[["style", "content", "noise"]].notna().all().all()
    assert df.loc[df["state"] != "COMPLETE", "style"].isna().all()
    assert set(done["network"]) <= {"vgg16_hed", "tiny"}
    assert all(isinstance(a, dict) and "sheet" in a and "photo0" in a for a in done["artifacts"])
    assert df.loc[df["number"] == 3, "chosen"].item() and df["chosen"].sum() == 1
    assert {"param:style_weight", "param:network", "param:init"} <= set(df.columns)
    assert df.loc[df["state"] == "FAIL", "note"].item().startswith("loss became nan")
    # The front is exactly the non-dominated finished, feasible trials (worked out here by hand).
    ok = done[done["feasible"]]
    points = list(zip(ok["style"], ok["content"], strict=True))
    expected = {n for n, p in zip(ok["number"], points, strict=True) if not _dominated(p, points)}
    assert set(done.loc[done["pareto"], "number"]) == expected and expected
    assert not df.loc[df["state"] != "COMPLETE", "pareto"].any()


def test_trials_frame_tolerates_foreign_trials():
    """Trials without the tuner's attributes (another tool's study) still give a table."""
    t = optuna.trial.create_trial(params={"x": 1.0}, distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
                                  values=[0.5, 0.2], user_attrs={"scores": "garbage", "artifacts": ["no"]})
    df = data.trials_frame([t])
    assert df.loc[0, "state"] == "COMPLETE" and math.isnan(df.loc[0, "style"]) and not df.loc[0, "pareto"]
    assert df.loc[0, "artifacts"] == {} and df.loc[0, "param:x"] == 1.0


def test_infeasible_trials_are_never_on_the_front():
    study = optuna.create_study(directions=["minimize", "minimize"])
    for style, content, noise in ((0.1, 0.1, 3.0), (0.5, 0.5, 0.0), (0.6, 0.6, 0.0)):
        trial = study.ask()  # stored as the objective stores it: an attribute and a constraint
        trial.set_user_attr("scores", {"style": style, "content": content, "noise": noise})
        trial.set_user_attr("feasible", noise <= 1.5)
        trial.set_constraint("noise", noise - 1.5)
        study.tell(trial, [style, content])
    df = data.study_frame(study)
    assert df["feasible"].tolist() == [False, True, True]
    assert df["pareto"].tolist() == [False, True, False], "a noisy trial cannot dominate the others"


def test_study_info_and_default_pick(study):
    info = data.study_info(study)
    assert info.record.style_name == "fixture" and info.chosen is None
    done = data.trials_frame(study.get_trials(deepcopy=False))
    done = done[done["state"] == "COMPLETE"]
    best = done.loc[(done["style"] + done["content"]).idxmin(), "number"]
    assert info.training_pick == best and "default" in info.pick_reason
    assert info.directions == ("minimize", "minimize")


def test_choose_trial_writes_the_tuner_choose_record(tmp_path):
    url = make_study(f"sqlite:///{tmp_path}/s.db", n_complete=3, n_pruned=1, n_fail=0)
    study = load_study(open_storage(url), "fixture")
    data.choose_trial(study, 1)
    fresh = load_study(open_storage(url), "fixture")
    assert fresh.user_attrs[CHOSEN_ATTR] == 1
    assert data.study_info(fresh).training_pick == 1
    with pytest.raises(StorageError, match="did not finish"):
        data.choose_trial(fresh, 3)  # the pruned one
    with pytest.raises(StorageError, match="no trial 99"):
        data.choose_trial(fresh, 99)
    assert load_study(open_storage(url), "fixture").user_attrs[CHOSEN_ATTR] == 1


def test_history_frame_best_so_far():
    df = pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"],
                       "style": [0.5, np.nan, 0.7, 0.2], "content": [0.5, np.nan, 0.1, 0.6], "noise": [0.0] * 4})
    h = data.history_frame(df)
    assert h["number"].tolist() == [0, 2, 3]
    assert h["best_style"].tolist() == [0.5, 0.5, 0.2]
    assert h["best_content"].tolist() == [0.5, 0.1, 0.1]
    assert np.allclose(h["best_sum"], [1.0, 0.8, 0.8])


def test_importance_frame(study, tmp_path):
    imp, note = data.importance_frame(study)
    assert note == ""
    assert set(imp["objective"]) == {"style", "content"}
    assert set(imp["param"]) <= {"network", "style_weight", "tv_weight", "style_scale", "init"}
    for _, part in imp.groupby("objective"):
        assert part["importance"].sum() == pytest.approx(1.0, abs=1e-6)
    few = make_study(f"sqlite:///{tmp_path}/few.db", n_complete=2, n_pruned=0, n_fail=0)
    imp2, note2 = data.importance_frame(load_study(open_storage(few), "fixture"))
    assert imp2.empty and "at least 3" in note2
    with pytest.raises(ValueError, match="evaluator"):
        data.importance_frame(study, evaluator="magic")


def test_gallery_defaults_and_rows(study):
    df = data.study_frame(study, chosen=None)
    info = data.study_info(study)
    picks = pictures.default_gallery_trials(df, info.training_pick, limit=3)
    assert picks[0] == info.training_pick and len(picks) == 3 and len(set(picks)) == 3
    front = set(df.loc[df["pareto"], "number"])
    assert set(picks[1:]) <= front or len(front) < 3
    rows = pictures.gallery_rows(info.record, df, picks + [7])  # 7 is pruned: no image
    assert [r["photo"] for r in rows] == ["photo0", "photo1"]
    assert rows[0]["photo_artifact"] == info.record.content_artifacts["photo0"]
    assert rows[0]["results"][7] is None and all(rows[0]["results"][n] for n in picks)


def test_point_trial_reads_every_customdata_shape():
    assert pictures.point_trial({"customdata": {"0": 4}}) == 4
    assert pictures.point_trial({"customdata": [7]}) == 7
    assert pictures.point_trial({"customdata": 3.0}) == 3
    assert pictures.point_trial({"customdata": None}) is None
    assert pictures.point_trial({"customdata": "x"}) is None
    assert pictures.point_trial({"x": 1}) is None


# --------------------------------------------------------------------------- studies
def _frozen(state, start, end=None, scores=None):
    return SimpleNamespace(number=0, state=optuna.trial.TrialState[state], datetime_start=start, datetime_complete=end,
                           params={}, values=None, user_attrs={"scores": scores} if scores else {})


def test_study_row_counts_best_and_liveness():
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    trials = [_frozen("COMPLETE", t0, t0 + timedelta(seconds=30), {"style": 0.4, "content": 0.3, "noise": 0.1}),
              _frozen("COMPLETE", t0, t0 + timedelta(seconds=60), {"style": 0.2, "content": 0.5, "noise": 0.2}),
              _frozen("PRUNED", t0, t0 + timedelta(seconds=70)),
              _frozen("RUNNING", t0 + timedelta(seconds=80))]
    attrs = {"styletune": {"style_name": "monet", "style_artifact": "abcdef12-3456", "content_names": ["a", "b"]},
             "chosen_trial": 1}
    row = data.study_row("s", attrs, trials, now=t0 + timedelta(minutes=5))
    assert (row["complete"], row["pruned"], row["running"], row["fail"]) == (2, 1, 1, 0)
    assert (row["best_style"], row["best_content"], row["best_noise"]) == (0.2, 0.3, 0.1)
    assert row["last_update"] == t0 + timedelta(seconds=80) and row["live"] and row["chosen"] == 1
    assert row["painting"] == "monet" and row["photos"] == 2 and row["tuner_study"]
    stale = data.study_row("s", attrs, trials, now=t0 + timedelta(hours=3))
    assert not stale["live"], "RUNNING trials left by a killed search must not look live forever"
    empty = data.study_row("e", {}, [])
    assert empty["trials"] == 0 and math.isnan(empty["best_style"]) and not empty["tuner_study"]


def test_studies_frame_lists_every_study_newest_first(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    make_study(url, "older", n_complete=2, n_pruned=0, n_fail=0)
    time.sleep(0.05)
    make_study(url, "newer", n_complete=1, n_pruned=1, n_fail=0)
    optuna.create_study(study_name="foreign", storage=open_storage(url))  # no trials, no record
    df = data.studies_frame(open_storage(url))
    assert df["study"].tolist()[:2] == ["newer", "older"] and set(df["study"]) == {"newer", "older", "foreign"}
    assert df.set_index("study").loc["newer", "pruned"] == 1
    assert not df.set_index("study").loc["foreign", "tuner_study"]


# --------------------------------------------------------------------------- images
def test_thumbnail_and_data_uri(study_url, study):
    sheet_id = next(t.user_attrs["artifacts"]["sheet"] for t in study.trials if t.state.name == "COMPLETE")
    png = read_artifact(study_url, sheet_id)
    assert png[:4] == b"\x89PNG" and pictures.data_uri(png).startswith("data:image/png;base64,")
    w, h = pictures.image_size(png)
    small = pictures.thumbnail(png, 40)
    assert small[:2] == b"\xff\xd8" and max(pictures.image_size(small)) == 40
    assert pictures.data_uri(small).startswith("data:image/jpeg;base64,")
    assert pictures.image_size(small)[0] / pictures.image_size(small)[1] == pytest.approx(w / h, rel=0.1)


# --------------------------------------------------------------------------- settings
def test_parse_settings_precedence(tmp_path):
    assert data.parse_settings([], {}).storage == "sqlite:///studies/studies.db"
    env = {"STYLETUNE_STORAGE": "sqlite:///env.db", "STYLETUNE_RUNS": "/r"}
    s = data.parse_settings([], env)
    assert (s.storage, s.runs, s.artifacts) == ("sqlite:///env.db", "/r", None)
    s = data.parse_settings(["--storage", "sqlite:///arg.db", "--artifacts", "/a", "--unknown"], env)
    assert (s.storage, s.artifacts) == ("sqlite:///arg.db", "/a")
    assert str(data.Settings(f"sqlite:///{tmp_path}/x/studies.db").runs_dir) == f"{tmp_path}/x/runs"
    assert str(data.Settings("postgresql://h/db", runs="/elsewhere").runs_dir) == "/elsewhere"


# --------------------------------------------------------------------------- runs
def test_load_run_complete_folder(tmp_path):
    folder = make_run(tmp_path, "r1", study="fixture", trial=2, steps=40, previews=3)
    run = training.load_run(folder)
    assert run.problems == [] and run.finished
    assert run.source == {"study": "fixture", "trial": 2, "storage": "sqlite:///studies/studies.db"}
    assert run.metrics["step"].tolist() == list(range(1, 41))
    assert run.loss_columns == ["loss", "content", "style", "tv"], "throughput and clock columns are not losses"
    assert [s for s, _ in run.previews] == [13, 26, 40] and run.last_step == 40
    assert run.scores == {"gatys": {"style": 0.38, "content": 0.27, "noise": 0.04},
                          "trained": {"style": 0.42, "content": 0.31, "noise": 0.05}}
    assert set(run.per_photo) == {"photo0", "photo1"} and run.judge.startswith("fixture-pixels")
    assert set(run.results) == {"photo0", "photo1"} == set(run.photos)
    assert run.config["network"] == "tiny"


def test_load_run_partial_and_broken_files(tmp_path):
    folder = make_run(tmp_path, "r2", partial=True, previews=1)
    run = training.load_run(folder)
    assert any("skipped 1 unreadable line" in p for p in run.problems)
    assert run.scores == {} and not run.finished and len(run.metrics) == 40 and run.results == {}
    (folder / "run.json").write_text('{"config": ')  # being rewritten
    (folder / "metrics.jsonl").write_text('{"loss": 1}\n[1, 2]\n{"step": 3, "loss": NaN}\n{"step": 4, "loss": 2.0}\n')
    run = training.load_run(folder)
    assert any("run.json unreadable" in p for p in run.problems)
    assert run.metrics["step"].tolist() == [3, 4]
    assert run.metrics.set_index("step").loc[4, "loss"] == 2.0
    assert run.source == {"study": None, "trial": None, "storage": None}
    (folder / "scores.json").write_text('{"step": 40, "note": "results not scored: judge weights missing"}')
    run = training.load_run(folder)
    assert run.finished and run.scores == {} and "not scored" in run.note
    empty = training.load_run(tmp_path / "nothing-here")
    assert "no run.json yet" in empty.problems and empty.metrics.empty


def test_list_runs(tmp_path):
    assert training.list_runs(tmp_path / "absent").empty
    make_run(tmp_path, "a", trial=1)
    make_run(tmp_path, "b", trial=2, partial=True)
    (tmp_path / "not-a-run").mkdir()
    df = training.list_runs(tmp_path)
    assert set(df["run"]) == {"a", "b"}
    assert df.set_index("run").loc["a", "finished"] and not df.set_index("run").loc["b", "finished"]
    assert "unreadable line" in df.set_index("run").loc["b", "problems"]


def test_read_metrics_keeps_last_of_duplicate_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"step": 1, "loss": 5}, {"step": 2, "loss": 4},
                                                       {"step": 1, "loss": 3}]) + "\n")
    df = training.read_metrics(path)
    assert df["step"].tolist() == [1, 2] and df["loss"].tolist() == [3.0, 4.0]


# --------------------------------------------------------------------------- concurrency
_WRITER = """
import sys, time, optuna
from tuner.reader import open_storage
url, seconds = sys.argv[1], float(sys.argv[2])
study = optuna.load_study(study_name="fixture", storage=open_storage(url))
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    trial = study.ask()
    trial.suggest_float("style_weight", 1e-4, 1.0, log=True)
    trial.set_user_attr("scores", {"style": 0.5, "content": 0.5, "noise": 0.1})
    trial.set_user_attr("loss_curve", [1.0, 0.5])
    study.tell(trial, [0.5, 0.5])
"""


def test_reading_and_choosing_while_a_search_writes_never_hits_a_locked_database(tmp_path):
    """The dashboard reads (and writes `chosen_trial`) while another process writes trials.

    Read through the dashboard's cached storage, so the test also shows the cache sees
    the other process's new trials and the current choice. The writer is a separate
    interpreter (a search-like loop of small transactions: ask, attrs, tell).
    """
    url = make_study(f"sqlite:///{tmp_path}/busy.db", n_complete=3, n_pruned=0, n_fail=0)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, url, "8"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parent.parent))
    try:
        # A fresh interpreter importing Optuna can take a while on a busy 2-core machine.
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "ready", f"the writer process did not start: {proc.stderr.read() if proc.stderr else ''}"
        storage = data.reading_storage(url)
        seen, reads = [], 0
        end = time.monotonic() + 5.0
        while time.monotonic() < end or (reads < 3 and proc.poll() is None):
            df = data.studies_frame(storage)
            study = load_study(storage, "fixture")
            trials = data.trials_frame(study.get_trials(deepcopy=False))
            pick = reads % 3
            data.choose_trial(study, pick)
            assert data.study_info(load_study(storage, "fixture")).chosen == pick
            seen.append(int(df.loc[0, "complete"]))
            reads += 1
            assert len(trials) >= 3
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"the writer failed (locked database on its side?): {err[-500:]}"
    assert reads >= 3 and seen[-1] > seen[0], "the reader should see the writer's new trials"
    assert load_study(open_storage(url), "fixture").user_attrs[CHOSEN_ATTR] == (reads - 1) % 3


def test_cached_reading_storage_sees_state_changes(tmp_path):
    """A trial that was RUNNING when first read shows up COMPLETE, with its attributes, later."""
    url = make_study(f"sqlite:///{tmp_path}/s.db", n_complete=1, n_pruned=0, n_fail=0)
    cached = data.reading_storage(url)
    writer = optuna.load_study(study_name="fixture", storage=open_storage(url))
    trial = writer.ask()
    first = data.trials_frame(load_study(cached, "fixture").get_trials(deepcopy=False))
    assert first["state"].tolist() == ["COMPLETE", "RUNNING"]
    trial.set_user_attr("scores", {"style": 0.1, "content": 0.2, "noise": 0.0})
    writer.tell(trial, [0.1, 0.2])
    again = data.trials_frame(load_study(cached, "fixture").get_trials(deepcopy=False))
    assert again["state"].tolist() == ["COMPLETE", "COMPLETE"] and again.loc[1, "style"] == 0.1


# --------------------------------------------------------------------------- off-the-shelf baseline
def test_ensure_baseline_paints_judges_and_stores_once(tmp_path, monkeypatch):
    """First view computes it with the study's own judge and stores it; later views read it back."""
    import tuner.baseline
    from nst.judge import Judge, JudgeSpec
    from tuner.reader import read_image_artifact

    spec = JudgeSpec.for_network("tiny")
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=3, n_pruned=0, n_fail=0, judge=spec.to_dict())
    study = load_study(open_storage(url), "fixture")
    assert data.study_info(study).baseline is None
    settings = data.Settings(url)
    base = data.ensure_baseline(study, settings)
    rec = study.user_attrs["styletune"]
    assert set(base.per_photo) == set(rec["content_names"]) and set(base.artifacts) == {*rec["content_names"], "sheet"}
    # Stored with the study: a fresh handle (another process) reads the same record.
    again = load_study(open_storage(url), "fixture")
    assert data.study_info(again).baseline == base
    # The pictures are the arbitrary network's at the proxy size, and the study's judge gives the stored scores.
    photos = np.stack([read_image_artifact(url, rec["content_artifacts"][n]) for n in rec["content_names"]])
    results = np.stack([read_image_artifact(url, base.artifacts[n]) for n in rec["content_names"]])
    assert results.shape == photos.shape and np.abs(results - photos).mean() > 0.02
    painting = read_image_artifact(url, rec["style_artifact"])
    rescored = Judge(JudgeSpec.from_dict(rec["judge"]), photos, painting).score(results).means()
    for key in ("style", "content", "noise"):
        assert rescored[key] == pytest.approx(base.scores[key], rel=0.05, abs=0.01), key

    def fail(*args, **kwargs):
        raise AssertionError("computed twice")

    monkeypatch.setattr(tuner.baseline, "compute_baseline", fail)
    assert data.ensure_baseline(again, settings) == base


def test_baseline_is_refused_for_a_judge_that_cannot_be_rebuilt_and_nothing_is_written(tmp_path):
    from tuner.baseline import BaselineUnavailable

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0)  # the fixture's pixel judge
    study = load_study(open_storage(url), "fixture")
    files = sorted(p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    with pytest.raises(BaselineUnavailable, match="fixture-pixels v1") as err:
        data.ensure_baseline(study, data.Settings(url))
    assert "\n" not in str(err.value)
    assert "baseline" not in load_study(open_storage(url), "fixture").user_attrs
    assert sorted(p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()) == files


def test_baseline_record_round_trip_and_bad_records():
    from tuner.baseline import Baseline

    base = Baseline(scores={"style": 0.5, "content": 0.4, "noise": 0.9}, per_photo={}, artifacts={"a": "x"},
                    feasible=True, side=384, seconds=1.5)
    assert Baseline.from_dict(json.loads(json.dumps(base.to_dict()))) == base
    assert Baseline.from_dict(None) is None
    assert Baseline.from_dict({**base.to_dict(), "version": 99}) is None  # another version: recomputed
    assert Baseline.from_dict({**base.to_dict(), "scores": {"style": "?"}}) is None


def test_baseline_verdict_counts_trials_better_on_both_scores():
    from tuner.baseline import Baseline

    base = Baseline(scores={"style": 0.5, "content": 0.5, "noise": 1.0}, per_photo={}, artifacts={}, feasible=True,
                    side=384, seconds=1.0)
    df = pd.DataFrame({"number": [0, 1, 2, 3, 4, 5], "state": ["COMPLETE"] * 5 + ["PRUNED"],
                       "style": [0.4, 0.3, 0.6, 0.45, 0.1, 0.1], "content": [0.4, 0.6, 0.25, 0.44, 0.1, 0.1],
                       "feasible": [True, True, True, True, False, True]})
    verdict = data.baseline_verdict(df, base)
    # 0 and 3 beat it on both; 1 and 2 trade one score for the other; 4 is too noisy, 5 did not finish.
    assert verdict["beaten_by"] == [0, 3] and verdict["trials"] == 4
    assert verdict["text"].startswith("2 of 4 finished trial(s) beat")
    # One objective (style + 1 * content): 2 (0.85) and 1 (0.9) now count too; best first.
    assert data.baseline_verdict(df, base, tradeoff=1.0)["beaten_by"] == [0, 2, 3, 1]
    assert data.baseline_verdict(df[df["number"] == 2], base)["text"].startswith("no finished trial beats")
    # The one line every command prints when none does, naming tuner preview; nothing when one does.
    assert verdict["note"] is None
    assert data.baseline_verdict(df[df["number"] == 2], base)["note"].startswith(
        "no trial beats the off-the-shelf baseline (style 0.500, content 0.500) on both scores; for this painting "
        "`tuner preview")


def test_gallery_rows_carry_the_baseline_as_a_comparable_result(study):
    from tuner.baseline import Baseline

    df = data.trials_frame(study.get_trials(deepcopy=False))
    rec = data.study_info(study).record
    ids = {n: f"id-{n}" for n in rec.content_names}
    base = Baseline(scores={"style": 0.5, "content": 0.5, "noise": 1.0}, per_photo={}, artifacts=ids, feasible=True,
                    side=384, seconds=1.0)
    first = int(df[df["state"] == "COMPLETE"]["number"].iloc[0])
    rows = pictures.gallery_rows(rec, df, [data.BASELINE, first], base)
    for row in rows:
        assert row["baseline_artifact"] == ids[row["photo"]]
        assert row["results"][data.BASELINE] == ids[row["photo"]]
        assert row["results"][first] is not None
    assert all(r["baseline_artifact"] is None for r in pictures.gallery_rows(rec, df, [first]))


# --------------------------------------------------------------------------- the study's artifact folder
def test_a_study_with_its_own_artifact_folder_shows_its_pictures_without_being_told_where(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    url = make_study(f"sqlite:///{tmp_path}/db/studies.db", n_complete=2, n_pruned=0, n_fail=0, artifacts=elsewhere)
    study = load_study(open_storage(url), "fixture")
    info = data.study_info(study)
    assert info.record.artifact_folder == str(elsewhere.resolve())
    cfg = data.parse_settings(["--storage", url], {})  # no --artifacts
    mine = cfg.for_study(info.record)
    assert mine.artifacts == str(elsewhere.resolve()) and data.missing_pictures(cfg, info.record) is None
    df = data.trials_frame(study.get_trials(deepcopy=False))
    rows = pictures.gallery_rows(info.record, df, [int(n) for n in df["number"]])
    ids = [r["painting_artifact"] for r in rows] + [r["photo_artifact"] for r in rows]
    ids += [i for r in rows for i in r["results"].values()]
    assert len(ids) == 8 and all(read_artifact(url, i, mine.artifacts)[:4] == b"\x89PNG" for i in ids)
    row = data.studies_frame(open_storage(url)).iloc[0]
    assert cfg.study_artifacts(row["artifact_folder"]) == mine.artifacts  # the studies page's thumbnails


def test_pictures_not_found_are_explained_in_one_line(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0, artifacts=elsewhere)
    record = data.study_info(load_study(open_storage(url), "fixture")).record
    elsewhere.rename(tmp_path / "moved")
    cfg = data.parse_settings(["--storage", url], {})
    assert data.missing_pictures(cfg, record) == (
        f"pictures not found in {elsewhere.resolve()} (recorded by the study) or {tmp_path / 'artifacts'} "
        "(beside the database); start the dashboard with --artifacts DIR")
    assert data.missing_pictures(data.Settings(url, str(tmp_path / "moved")), record) is None


def test_a_study_made_before_the_folder_was_recorded_reads_beside_the_database(tmp_path):
    from tuner.reader import STUDY_ATTR, artifact_dir
    from tuner.records import StudyRecord

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    study = load_study(open_storage(url), "fixture")
    old = {k: v for k, v in study.user_attrs[STUDY_ATTR].items() if k != "artifact_folder"}
    study.set_user_attr(STUDY_ATTR, old)
    record = StudyRecord.from_user_attrs(study.user_attrs)
    assert record.artifact_folder is None
    cfg = data.parse_settings(["--storage", url], {})
    assert cfg.for_study(record).artifacts is None and data.missing_pictures(cfg, record) is None
    assert artifact_dir(url, None, record.artifact_folder) == tmp_path / "artifacts"
