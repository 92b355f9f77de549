"""Honest when it loses: every place that recommends a trial says when none beats the off-the-shelf baseline.

The baseline record is written here with the scores each test needs (as ``tuner show``
would have stored it), so nothing runs Magenta's network; the studies are the blend
fixtures of :mod:`tuner.testing`.
"""

from __future__ import annotations

import json

import pytest

from nst.judge import JudgeSpec
from nst.testing import synthetic_photo
from tests.studyfactory import make_study
from tuner.baseline import BASELINE_ATTR, Baseline, read_baseline
from tuner.cli import main as tuner_main
from tuner.reader import load_study, open_storage
from tuner.records import trial_records

#: The line, with the baseline scores :func:`_unbeatable` stores.
LOSING = ("no trial beats the off-the-shelf baseline (style 0.001, content 0.002) on both scores; for this painting "
          "`tuner preview --style PAINTING --content PHOTO -o out.png` may serve you better")


def _set_baseline(url: str, style: float, content: float, name: str = "fixture") -> None:
    record = Baseline(scores={"style": style, "content": content, "noise": 0.1}, per_photo={}, artifacts={},
                      feasible=True, side=384, seconds=0.1)
    load_study(open_storage(url), name).set_user_attr(BASELINE_ATTR, record.to_dict())


def _unbeatable(url: str) -> None:
    _set_baseline(url, 0.001, 0.002)


def _beatable(url: str) -> None:
    _set_baseline(url, 9.0, 9.0)


def _tuner(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = tuner_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url(tmp_path) -> str:
    return make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=4, n_pruned=0, n_fail=0)


def test_show_says_in_one_line_when_no_trial_beats_the_baseline(url, capsys):
    _unbeatable(url)
    code, out, err = _tuner(["show", "fixture", "--storage", url], capsys)
    assert code == 0, err
    assert LOSING in out.splitlines(), out
    assert "0 of 4 feasible trial(s) beat it" in out
    _beatable(url)
    code, out, _ = _tuner(["show", "fixture", "--storage", url], capsys)
    assert code == 0 and "4 of 4 feasible trial(s) beat it" in out
    assert "no trial beats" not in out and "tuner preview" not in out


def test_best_says_so_for_people_and_answers_beats_baseline_for_machines(url, capsys):
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    assert code == 0 and json.loads(out)["beats_baseline"] is None, "no baseline stored: no verdict"
    code, out, _ = _tuner(["best", "fixture", "--storage", url], capsys)
    assert "no trial beats" not in out
    _unbeatable(url)
    code, out, err = _tuner(["best", "fixture", "--storage", url], capsys)
    assert code == 0, err
    assert out.splitlines()[1] == LOSING, "the line right under the pick, before its config"
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    payload = json.loads(out)  # still pure JSON
    assert payload["beats_baseline"] is False
    code, out, err = _tuner(["best", "fixture", "--config", "--storage", url], capsys)
    assert json.loads(out) and err.strip() == LOSING
    _beatable(url)
    code, out, err = _tuner(["best", "fixture", "--storage", url], capsys)
    assert code == 0 and "no trial beats" not in out + err
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    assert json.loads(out)["beats_baseline"] is True


def test_the_default_pick_comes_from_the_trials_that_beat_the_baseline(tmp_path, capsys):
    from dashboard import data

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=8, n_pruned=0, n_fail=0, seed=3)
    study = load_study(open_storage(url), "fixture")
    done = [t for t in trial_records(study.get_trials()) if t.scored and t.feasible]
    first = min(done, key=lambda t: (t.total, t.number))  # the plain rule's pick
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    assert json.loads(out)["trial"] == first.number
    # A baseline just worse than another trial on both scores, which the plain pick does not beat.
    other = next(t for t in sorted(done, key=lambda t: t.score("style"))
                 if t.number != first.number and (first.score("style") > t.score("style") + 1e-3
                                                  or first.score("content") > t.score("content") + 1e-3))
    _set_baseline(url, other.score("style") + 1e-3, other.score("content") + 1e-3)
    base = read_baseline(study.user_attrs)
    winners = [t for t in done if base.beaten_by(t.scores)]
    assert first not in winners and other in winners
    expected = min(winners, key=lambda t: (t.total, t.number)).number
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    payload = json.loads(out)
    assert payload["trial"] == expected and payload["beats_baseline"] is True
    assert "beat the off-the-shelf baseline first" in payload["rule"]
    assert data.study_info(study).training_pick == expected, "the dashboard's pick is the same rule"


def test_when_no_trial_beats_the_baseline_the_pick_is_the_one_that_misses_it_by_least(tmp_path, capsys):
    """Not the smallest sum, which picks whichever end of the front trades cheaply (a tinted photo, say)."""
    from dashboard import data

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=8, n_pruned=0, n_fail=0, seed=3)
    study = load_study(open_storage(url), "fixture")
    done = [t for t in trial_records(study.get_trials()) if t.scored and t.feasible]
    first = min(done, key=lambda t: (t.total, t.number))  # the smallest sum
    near = next(t for t in sorted(done, key=lambda t: -t.total) if t.number != first.number)
    # a baseline just better than `near` on both scores: nobody beats it, `near` misses it by 0.001
    _set_baseline(url, near.score("style") - 1e-3, near.score("content") - 1e-3)
    base = read_baseline(study.user_attrs)
    assert not [t for t in done if base.beaten_by(t.scores)]
    assert min(done, key=lambda t: base.shortfall(t.scores)).number == near.number
    code, out, _ = _tuner(["best", "fixture", "--json", "--storage", url], capsys)
    payload = json.loads(out)
    assert payload["trial"] == near.number != first.number and payload["beats_baseline"] is False
    assert "misses it by least" in payload["rule"]
    assert data.study_info(study).training_pick == near.number, "the dashboard's pick is the same rule"


def test_trainer_fit_from_a_losing_study_says_so_and_still_trains(tmp_path, capsys):
    from nst.images import save_image
    from trainer.cli import main as trainer_main

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0, networks=("tiny",),
                     judge=JudgeSpec.for_network("tiny").to_dict())
    photos = tmp_path / "data"
    for i in range(3):
        save_image(photos / f"p{i}.png", synthetic_photo(48, seed=i))
    _unbeatable(url)
    argv = ["fit", "--from-study", "fixture", "--storage", url, "--data", str(photos), "--runs-dir",
            str(tmp_path / "runs"), "--steps", "1", "--preview-every", "1", "--recipe", "paper", "--size", "32",
            "--batch", "2", "--width", "0.125", "-q"]
    capsys.readouterr()
    assert trainer_main(argv) == 0
    out, err = capsys.readouterr()
    assert f"note: {LOSING}" in err.splitlines(), err
    assert err.index(LOSING) < err.index("new run"), "said before training starts"
    assert "trained fixture-t" in out, "a note, not a refusal"
    _beatable(url)
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert trainer_main([*argv[:5], "--data", str(empty), "--runs-dir", str(tmp_path / "runs2")]) == 2
    out, err = capsys.readouterr()
    assert "no usable training photos" in err and "no trial beats" not in err, err
