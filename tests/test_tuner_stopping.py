"""The two-objective early-stop rule, alone and inside a search."""

from __future__ import annotations

import pytest

from tuner.stopping import ParetoStopRule, checkpoint_steps


def test_a_trial_that_barely_moved_towards_the_painting_is_stopped_at_the_first_checkpoint():
    rule = ParetoStopRule()
    assert rule.verdict(16, True, (0.95, 0.01), []).startswith("no visible style")
    assert rule.verdict(33, False, (0.95, 0.01), []) is None  # only judged at the first checkpoint
    assert rule.verdict(16, True, (0.85, 0.01), []) is None


def test_domination_needs_enough_peers_and_a_share_of_them():
    rule = ParetoStopRule(min_peers=8, share=0.2, margin=0.02)
    better = [(0.3, 0.1), (0.35, 0.12)]
    worse = [(0.6, 0.4)] * 6
    assert rule.verdict(16, False, (0.5, 0.3), better + worse).startswith("dominated by 2 of 8")
    assert rule.verdict(16, False, (0.5, 0.3), better + worse[:5]) is None  # 7 peers: still warming up
    assert rule.verdict(16, False, (0.5, 0.3), better[:1] + worse + [(0.6, 0.4)]) is None  # 1 of 8 < 20%


def test_a_trade_off_is_never_dominated_and_margins_matter():
    rule = ParetoStopRule(min_peers=1, share=0.2, margin=0.02)
    # Far behind on style but ahead on content: kept.
    assert rule.verdict(16, False, (0.8, 0.05), [(0.3, 0.3)] * 10) is None
    # Better in both, but by less than the margin: kept.
    assert rule.verdict(16, False, (0.5, 0.3), [(0.49, 0.29)] * 10) is None


@pytest.mark.parametrize("steps,expected", [(50, (16, 33)), (9, (3, 6)), (3, (1, 2)), (2, (1,))])
def test_checkpoints_sit_at_a_third_and_two_thirds(steps, expected):
    assert checkpoint_steps(steps) == expected


def test_a_search_stops_a_do_nothing_trial_and_records_why(tmp_path):
    from nst.images import save_image
    from tests.conftest import synthetic_painting, synthetic_photo
    from tuner.search import SearchOptions, prepare, work

    save_image(tmp_path / "painting.png", synthetic_painting(64))
    for i in range(2):
        save_image(tmp_path / "photos" / f"p{i}.png", synthetic_photo(40, seed=i))
    options = SearchOptions(style=str(tmp_path / "painting.png"), content=(str(tmp_path / "photos"),), size=32,
                            steps=9, trials=1, storage=f"sqlite:///{tmp_path / 's.db'}", networks=("tiny",),
                            judge_network="tiny", noise_limit=10.0, seed=0, quiet=True, study="stop",
                            sampler="random", proxy="gatys")  # no recipes queued first
    prep = prepare(options)
    # The weakest style the space allows: a Gatys run starting from the photo stays a photo.
    # (The network proxy starts from Magenta's painted result, so it never is one at step 3.)
    prep.study.enqueue_trial({"style_ratio": 1e-3, "tv_ratio": 1e-5})
    work(prep, 1)
    t = next(t for t in prep.study.get_trials() if t.state.name in ("COMPLETE", "PRUNED"))
    assert t.state.name == "PRUNED", t.user_attrs
    assert t.user_attrs["pruned_at"] == 3 and "no visible style" in t.user_attrs["prune_reason"]
    assert "3" in t.user_attrs["checkpoints"] and len(t.user_attrs["loss_curve"]) == 3
