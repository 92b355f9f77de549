"""tuner.records: the stored contract as types (names, defaults, round trips, the front)."""

from __future__ import annotations

import math
from dataclasses import fields

import optuna
import pytest

from tuner import records
from tuner.records import StudyRecord, TrialRecord, pareto_front, state_counts


def _trial(user_attrs, state=optuna.trial.TrialState.COMPLETE, values=(0.5, 0.5)):
    done = state == optuna.trial.TrialState.COMPLETE
    return optuna.trial.create_trial(state=state, values=list(values) if done else None, user_attrs=user_attrs)


def test_every_trial_attribute_name_is_a_field_of_the_record():
    names = {getattr(records, n) for n in dir(records) if n.endswith("_ATTR") and n not in ("STUDY_ATTR", "CHOSEN_ATTR", "BASELINE_ATTR")}
    own = {"number", "state", "params", "values"}
    assert names == {f.name for f in fields(TrialRecord)} - own


def test_trial_record_round_trips_through_user_attributes():
    rec = TrialRecord(
        number=-1, state="COMPLETE", style_config={"network": "tiny"}, scores={"style": 0.3, "content": 0.2, "noise": 0.1},
        loss_curve=(3.0, 2.0), artifacts={"sheet": "a" * 12, "photo0": "b" * 12}, feasible=False,
        checkpoints={"5": (0.9, 0.1, 0.0)}, seconds=4.5, iterations=12, per_photo={"photo0": {"style": 0.3}},
        score_parts={"deep": 0.2}, recipe="johnson", pruned_at=None, fail_reason=None)
    attrs = rec.to_user_attrs()
    assert attrs["feasible"] is False and attrs["checkpoints"] == {"5": [0.9, 0.1, 0.0]}
    assert "pruned_at" not in attrs and "number" not in attrs, "defaults and Optuna's own fields are not written"
    back = TrialRecord.from_trial(_trial(attrs))
    assert back == TrialRecord(**{**rec.__dict__, "values": (0.5, 0.5)})


def test_missing_or_malformed_attributes_read_as_the_defaults():
    rec = TrialRecord.from_trial(_trial({"scores": "garbage", "artifacts": ["no"], "feasible": "yes",
                                         "loss_curve": [1.0, "x", math.nan], "seconds": "slow", "style_config": 3}))
    assert rec.scores == {} and rec.artifacts == {} and rec.feasible is True and rec.seconds is None
    assert rec.loss_curve == (1.0,) and rec.style_config is None and not rec.scored and rec.total == math.inf
    assert math.isnan(rec.score("style"))
    assert TrialRecord.from_trial(_trial({"feasible": False})).feasible is False


def test_study_record_round_trip_keeps_unknown_keys():
    raw = {"version": 1, "style_name": "monet", "style_sha256": "ab" * 32, "style_file": "monet.jpg",
           "style_artifact": "id-1", "content_names": ["p0", "p1"], "content_artifacts": {"p0": "i0", "p1": "i1"},
           "proxy_size": 128, "steps": 50, "judge": {"name": "j", "version": 2}, "objectives": ["style", "content"],
           "tradeoff": None, "seed": 3, "styletune_version": "9.9"}
    rec = StudyRecord.from_user_attrs({records.STUDY_ATTR: raw})
    assert rec is not None and rec.content_names == ("p0", "p1") and rec.extra == {"styletune_version": "9.9"}
    assert rec.painting_label == "monet.jpg"
    stored = rec.to_user_attrs()[records.STUDY_ATTR]
    assert {k: stored[k] for k in raw} == raw
    assert StudyRecord.from_user_attrs({}) is None and StudyRecord.from_user_attrs({records.STUDY_ATTR: "x"}) is None


def test_chosen_trial_reads_numbers_only():
    assert records.chosen_trial({records.CHOSEN_ATTR: 4}) == 4
    assert records.chosen_trial({records.CHOSEN_ATTR: None}) is None
    assert records.chosen_trial({records.CHOSEN_ATTR: "four"}) is None


def test_state_counts_counts_every_state():
    trials = [_trial({}), _trial({}, optuna.trial.TrialState.PRUNED), _trial({}, optuna.trial.TrialState.FAIL),
              _trial({})]
    assert state_counts(trials) == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1, "RUNNING": 0, "WAITING": 0}


@pytest.mark.parametrize("directions", [2, 1])
def test_front_is_optunas_and_leaves_out_trials_over_the_noise_limit(directions):
    """A too-noisy trial that beats everything is not on the front, and does not hide what it beats."""
    study = optuna.create_study(directions=["minimize"] * directions)
    rows = [(0.1, 0.1, 3.0), (0.5, 0.3, 0.2), (0.3, 0.55, 0.2), (0.6, 0.6, 0.2)]  # style, content, noise
    for style, content, noise in rows:
        trial = study.ask()
        trial.set_user_attr("scores", {"style": style, "content": content, "noise": noise})
        trial.set_user_attr("feasible", noise <= 1.5)
        trial.set_constraint("noise", noise - 1.5)
        study.tell(trial, [style, content] if directions == 2 else style + content)
    front = [r.number for r in pareto_front(study)]
    assert front == ([1, 2] if directions == 2 else [1]), "by style + content, then number"


def test_proxy_seconds_is_written_under_its_name_and_read_from_older_studies():
    assert TrialRecord(number=0, state="COMPLETE", proxy_seconds=2.5).to_user_attrs() == {"proxy_seconds": 2.5}
    old = TrialRecord.from_trial(_trial({"gatys_seconds": 3.25, "seconds": 4.0}))
    assert old.proxy_seconds == 3.25 and old.seconds == 4.0, "studies made before the rename keep their proxy time"
    both = TrialRecord.from_trial(_trial({"gatys_seconds": 3.25, "proxy_seconds": 1.5}))
    assert both.proxy_seconds == 1.5


def test_store_trial_writes_the_values_given_and_refuses_names_no_reader_reads():
    study = optuna.create_study()
    trial = study.ask()
    records.store_trial(trial, checkpoints={}, feasible=True, scores={"style": 0.5})
    assert trial.user_attrs == {"checkpoints": {}, "feasible": True, "scores": {"style": 0.5}}, "defaults included"
    with pytest.raises(TypeError, match="scroes"):
        records.store_trial(trial, scroes={})
    with pytest.raises(TypeError, match="number"):
        records.store_trial(trial, number=3)


def test_a_malformed_study_record_is_told_from_none():
    assert records.has_study_record({records.STUDY_ATTR: "x"}) and not records.has_study_record({})
    assert StudyRecord.from_user_attrs({records.STUDY_ATTR: "x"}) is None
