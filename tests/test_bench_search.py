"""Smoke tests of the benches that run real searches (``bench/study_cost.py``, ``bench/search_efficiency.py``).

Each runs its main functions on a few trials of a search over the ``tiny`` network at 32 px
(the search options overridden as the reliability tests override them), and checks the
tables its docs section quotes. The replay of the stopping rules is checked by hand.
"""

from __future__ import annotations

import functools

import pytest

from nst.images import save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo


@pytest.fixture
def tiny_searches(tmp_path, monkeypatch):
    """Every ``SearchOptions`` a bench builds searches the tiny network, Gatys proxy, 32 px, 4 steps."""
    import tuner.search

    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    for i in range(2):
        save_image(tmp_path / "photos" / f"p{i}.png", synthetic_photo(40, seed=i))
    tiny = {"content": (str(tmp_path / "photos"),), "size": 32, "steps": 4, "networks": ("tiny",),
            "judge_network": "tiny", "noise_limit": 10.0, "proxy": "gatys"}
    real = tuner.search.SearchOptions
    monkeypatch.setattr(tuner.search, "SearchOptions", lambda **kw: real(**{**kw, **tiny}))
    return str(painting)


def test_study_cost_runs_a_study_and_prints_the_cost_table(tiny_searches, tmp_path, monkeypatch, capsys):
    import bench.study_cost as sc

    monkeypatch.setattr(sc, "step_cost", functools.partial(sc.step_cost, config=TINY_CONFIG))
    db = tmp_path / "cost.db"
    assert sc.main(["--trials", "3", "--style", tiny_searches, "--keep", str(db)]) == 0
    out = capsys.readouterr().out
    for quantity in ("median trial wall time, s", "two objectives: trials stopped (replay)",
                     "--tradeoff 1: share of steps / time saved", "50 trials, two objectives, min (extrapolated)"):
        assert quantity in out
    assert out.count("\n    ") >= 3  # a line per trial
    assert sc.main(["--analyse", str(db)]) == 0  # the tables again, from the kept study
    assert "median trial wall time, s" in capsys.readouterr().out


def test_study_cost_replays_the_stopping_rules_on_recorded_checkpoints():
    from types import SimpleNamespace

    from bench.study_cost import replay_percentile, savings

    def trial(number, at_1, at_2):
        return SimpleNamespace(number=number, iterations=30, proxy_seconds=30.0, seconds=31.0,
                               checkpoints={"10": (at_1, at_1, 0.5), "20": (at_2, at_2, 0.5)})

    trials = [trial(i, 0.3, 0.3) for i in range(9)] + [trial(9, 0.95, 0.95)]
    stops = replay_percentile(trials, (10, 20))
    assert stops[9][0] == 10 and stops[9][1] == pytest.approx(2 / 3)  # stopped at the first checkpoint
    assert all(n not in stops for n in range(9))
    steps, seconds = savings(trials, stops)
    assert 0 < steps < 1 and 0 < seconds < 1


def test_search_efficiency_compares_hypervolumes_after_the_same_trials(tiny_searches, capsys):
    from bench.search_efficiency import hypervolume, main

    assert hypervolume([(0.5, 0.5)]) == pytest.approx(0.25)
    assert hypervolume([(0.2, 0.8), (0.8, 0.2), (0.9, 0.9)]) == pytest.approx(0.8 * 0.2 + 0.2 * 0.6)
    assert hypervolume([(1.2, 0.1)]) == 0.0  # outside the reference box
    assert main(["--trials", "3", "--random-trials", "4", "--style", tiny_searches]) == 0
    out = capsys.readouterr().out
    assert "hypervolume ours (median)" in out and "hypervolume random (median)" in out
    assert "random search first matches ours@3" in out and "random search needs" in out
