"""The judge against a painter's eye: the labelled pairs in ``tests/data/preferences`` (128 px)
and ``tests/data/preferences512`` (512 px, this product's own outputs).

The sets themselves are checked without weights (every picture is there at its size, every
label has a reason); the agreement needs Magenta's style predictor and ImageNet VGG16 and
is marked ``weights``. See ``docs/judge.md`` for how the pairs were made and labelled.
"""

from __future__ import annotations

import pytest

from bench.judge_preferences import DATA, DATA512, agreement, judge_pairs, judge_prefers, load_pairs, load_sets

#: The agreement the default judge must reach, on each set and on both together.
MIN_AGREEMENT = 0.80
#: The kinds of pair the 512 px set holds: each competitor of a study against another.
KINDS_512 = {"trained vs baseline", "proxy vs baseline", "proxy vs proxy", "Gatys vs network"}


def test_the_preference_set_is_complete_and_small():
    from PIL import Image

    pairs = load_pairs()
    assert len(pairs) >= 40
    assert {p.prefer for p in pairs} <= {"a", "b"}
    assert {p.confidence for p in pairs} <= {"clear", "close"}
    assert all(len(p.reason) > 20 for p in pairs), "every label says why"
    assert len({(p.painting, p.photo, p.a, p.b) for p in pairs}) == len(pairs), "no pair twice"
    for p in pairs:
        for variant in (p.a, p.b, "photo"):
            with Image.open(p.path(variant)) as im:
                assert im.size == (128, 128), p.path(variant)
    assert sum(f.stat().st_size for f in DATA.iterdir()) < 5_000_000


def test_the_512_preference_set_is_complete_and_small():
    """At least 40 pairs on the four paintings, every kind, 512 px JPEGs, the folder under 15 MB."""
    from PIL import Image

    pairs = load_pairs(DATA512 / "labels.csv")
    assert len(pairs) >= 40
    assert {p.painting for p in pairs} == {"monet", "starry_night", "wave", "shipwreck"}
    assert {p.kind for p in pairs} == KINDS_512
    assert {p.prefer for p in pairs} <= {"a", "b"}, "every pair is labelled"
    assert {p.confidence for p in pairs} <= {"clear", "close"}
    assert all(len(p.reason) > 20 for p in pairs), "every label says why"
    assert len({(p.painting, p.photo, frozenset((p.a, p.b))) for p in pairs}) == len(pairs), "no pair twice"
    for p in pairs:
        for variant in (p.a, p.b, "photo"):
            with Image.open(p.path(variant)) as im:
                assert im.format == "JPEG" and im.size == (512, 512), p.path(variant)
    assert sum(f.stat().st_size for f in DATA512.iterdir()) < 15_000_000


def test_the_judge_prefers_a_feasible_result_then_the_smaller_sum():
    clean = {"style": 0.6, "content": 0.4, "noise": 1.0}
    better_but_noisy = {"style": 0.2, "content": 0.2, "noise": 1.6}
    better = {"style": 0.3, "content": 0.3, "noise": 1.4}
    assert judge_prefers(clean, better_but_noisy, 1.5) == "a"
    assert judge_prefers(better_but_noisy, clean, 1.5) == "b"
    assert judge_prefers(clean, better, 1.5) == "b"
    assert judge_prefers(better_but_noisy, {**better_but_noisy, "style": 0.3}, 1.5) == "a"  # both infeasible


def test_agreement_counts_matches():
    pairs = load_pairs()[:4]
    scored = [{"pair": p, "judge": p.prefer if i % 2 else ("b" if p.prefer == "a" else "a")} for i, p in enumerate(pairs)]
    assert agreement(scored) == 0.5


@pytest.fixture(scope="module")
def scored_sets():
    return judge_pairs(load_sets())


def _misses(scored):
    return [f"{r['pair'].set} {r['pair'].painting}/{r['pair'].photo}: {r['pair'].a} vs {r['pair'].b}" for r in scored
            if r["judge"] != r["pair"].prefer]


@pytest.mark.weights
@pytest.mark.parametrize("which", ["128", "512", "all"])
def test_the_default_judge_agrees_with_the_painters_labels(scored_sets, which):
    scored = [r for r in scored_sets if which in ("all", r["pair"].set)]
    assert agreement(scored) >= MIN_AGREEMENT, _misses(scored)


@pytest.mark.weights
def test_the_default_judge_reports_each_style_part(scored_sets):
    for r in scored_sets:
        for side in ("a", "b"):
            for part in ("style_deep", "style_gram", "style_colour"):
                assert 0.0 <= r[side][part] <= 2.0, (r["pair"], side, part, r[side][part])
