"""The fidelity bench's mechanics on a fixture study and tiny networks: picking along the front, the table, the sheet."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.fidelity_stats import Row, nondominated_layers, spearman, spread_along_front, summarise


def test_layers_and_spread_pick_the_front_first_and_its_ends():
    points = {0: (0.1, 0.9), 1: (0.2, 0.5), 2: (0.3, 0.4), 3: (0.5, 0.2), 4: (0.9, 0.1),  # the front
              5: (0.4, 0.6), 6: (0.95, 0.95), 7: (0.6, 0.5)}
    layers = nondominated_layers(points)
    assert layers[0] == [0, 1, 2, 3, 4] and layers[1] == [5, 7] and layers[2] == [6]
    assert spread_along_front(points, 3) == [0, 2, 4]  # both ends and the middle
    assert spread_along_front(points, 6) == [0, 1, 2, 3, 4, 5]  # a short front is topped up from the next layer
    assert spread_along_front(points, 20) == [0, 1, 2, 3, 4, 5, 7, 6]


def test_spearman_is_rank_correlation():
    assert spearman([0.1, 0.2, 0.3], [5.0, 7.0, 100.0]) == pytest.approx(1.0)
    assert spearman([0.1, 0.2, 0.3, 0.4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([0.1, 0.2], [1, 2]))


def test_two_runs_compare_row_by_row():
    from bench.fidelity_stats import compare_runs

    def run(styles, contents):
        return {"rows": [{"label": f"trial {i}", "network": {"style": s, "content": c}}
                         for i, (s, c) in enumerate(zip(styles, contents, strict=True))]}

    a = run([0.20, 0.21, 0.22, 0.90], [0.5, 0.4, 0.3, 0.0])
    b = run([0.21, 0.20, 0.22, 0.85], [0.5, 0.4, 0.3, 0.05])  # two close styles swap: rho < 1
    c = compare_runs(a, b)
    assert c["rho_content"] == pytest.approx(1.0) and c["rho_style"] == pytest.approx(0.8)
    assert c["max_abs_diff_style"] == pytest.approx(0.05) and c["rows"] == 4
    with pytest.raises(ValueError, match="different rows"):
        compare_runs(a, run([0.2, 0.2, 0.2], [0.1, 0.1, 0.1]))


def test_summary_counts_rows_within_a_tenth_on_both_scores():
    rows = [Row("a", None, proxy={"style": 0.3, "content": 0.2}, network={"style": 0.35, "content": 0.25}),
            Row("b", None, proxy={"style": 0.5, "content": 0.1}, network={"style": 0.45, "content": 0.4}),
            Row("c", None, proxy={"style": 0.7, "content": 0.05}, network={"style": 0.9, "content": 0.06})]
    s = summarise(rows)
    assert s["within_0.10"] == 1 and s["rows"] == 3
    assert s["max_abs_diff_content"] == pytest.approx(0.3) and s["max_abs_diff_style"] == pytest.approx(0.2)
    assert s["rho_style"] == pytest.approx(1.0)


def test_bench_runs_end_to_end_on_tiny_networks(tmp_path):
    """A fixture study, a tiny loss and judge, two training steps per trial: every row, the table and the sheet."""
    from bench.fidelity import run_bench
    from nst.images import load_image, save_image
    from nst.judge import JudgeSpec
    from tests.conftest import TINY_CONFIG, synthetic_photo
    from tests.studyfactory import make_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(url, "fix", networks=("tiny",), n_complete=6, n_pruned=0, n_fail=0)
    data = tmp_path / "data"
    for i in range(4):
        save_image(data / f"p{i}.png", synthetic_photo(48, seed=40 + i, width=56))
    out = tmp_path / "out"
    lines: list[str] = []
    settings = {"arch": "fast", "width": 0.125, "size": 32, "batch": 2, "steps": 2, "lr": 1e-2, "checkpoint_every": 2}
    result = run_bench(url, "fix", str(data), out, trials=3, settings=settings, default_config=TINY_CONFIG,
                       judge_spec=JudgeSpec.for_network("tiny"), magenta_reference=False, log=lines.append)
    labels = [r["label"] for r in result["rows"]]
    assert len(labels) == 4 and labels[-1] == "default config" and all(lab.startswith("trial ") for lab in labels[:3])
    assert all(r["steps"] == 2 for r in result["rows"])
    for r in result["rows"]:
        assert set(r["proxy"]) == set(r["network"]) == {"style", "content", "noise"}
        assert all(np.isfinite(v) for v in r["network"].values())
    assert {k for k in result["summary"]} >= {"rho_style", "rho_content", "within_0.10"}
    table = (out / "fidelity.md").read_text()
    assert "Spearman rho over 4 rows" in table and "| trial " in table
    sheet = load_image(out / "fidelity_sheet.png")
    assert sheet.shape[1] > sheet.shape[0]  # 4 rows, each 2 photos x (photo, proxy, network)
    assert result["view"] is None and any("view size" in line and "skipped" in line for line in lines)
    assert json.loads((out / "fidelity.json").read_text())["settings"]["arch"] == "fast"


def test_default_recipe_is_what_trainer_fit_gives_the_study():
    """No --steps or --lr: the network-proxy study's own steps and rate, and its blend; typed steps spread the rate."""
    from bench.fidelity import FALLBACK_LR, FALLBACK_STEPS, study_recipe
    from tuner.records import StudyRecord

    record = StudyRecord(proxy={"kind": "network", "lr": 0.02, "blend": True}, steps=30).proxy_run
    base = {"arch": "magenta", "tune": "norm", "size": 128, "batch": 4}
    got = study_recipe(record, base, {})
    assert (got["steps"], got["lr"], got["photo_skip"], got["checkpoint_every"]) == (30, 0.02, True, 30)
    longer = study_recipe(record, {**base, "steps": 120}, {"steps": 120})
    assert longer["steps"] == 120 and longer["lr"] == pytest.approx(0.02 * 30 / 120)
    typed = study_recipe(record, {**base, "lr": 1e-3}, {"lr": 1e-3})
    assert typed["lr"] == 1e-3 and typed["steps"] == 30
    gatys = study_recipe(StudyRecord(proxy={"kind": "gatys"}, steps=30).proxy_run, base, {})
    assert (gatys["steps"], gatys["lr"]) == (FALLBACK_STEPS, FALLBACK_LR) and "photo_skip" not in gatys


def test_missing_training_photos_is_one_line_naming_the_fix(tmp_path, capsys):
    from bench.fidelity import main

    with pytest.raises(SystemExit) as exc:
        main(["--storage", f"sqlite:///{tmp_path / 'x.db'}", "--study", "s", "--data", str(tmp_path / "nosuch")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "nosuch: no such folder" in err and "--data" in err
    assert not (tmp_path / "x.db").exists()


def test_pick_names_trials_and_refuses_one_the_study_lacks(tmp_path):
    from bench.common import trial_numbers
    from bench.fidelity import run_bench
    from tests.studyfactory import make_study

    assert trial_numbers("12,16") == (12, 16)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(url, "fix", networks=("tiny",), n_complete=3, n_pruned=0, n_fail=0)
    (tmp_path / "data").mkdir()
    with pytest.raises(SystemExit, match=r"--pick 7: not a completed trial of study 'fix' \(completed: 0, 1, 2\)"):
        run_bench(url, "fix", str(tmp_path / "data"), tmp_path / "out", pick=(1, 7), settings={"arch": "fast"},
                  log=lambda s: None)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_view_size_rows_judge_the_gallery_and_the_network_at_512_and_1024_on_a_common_view():
    """The view-size mechanics on a tiny judge: a network that paints like the gallery lands on it; one that does not, off it."""
    from bench.fidelity_view import ViewRow, format_view_report, judge_row, paint_sizes, summarise_view, view_sheet
    from nst.images import resize_longest
    from nst.judge import Judge, JudgeSpec
    from nst.viewsize import paint_at_scale
    from tests.conftest import synthetic_painting, synthetic_photo

    photos = [synthetic_photo(96, seed=s) for s in (1, 2)]
    painting = synthetic_painting(96)
    judge = Judge(JudgeSpec.for_network("tiny"), np.stack([resize_longest(p, 64) for p in photos]), painting)

    def warm(x):  # a stand-in network: a colour shift and a blur, the same at any size
        return np.clip(0.6 * x + 0.4 * np.array([0.9, 0.5, 0.2], np.float32), 0, 1)

    rows = []
    for label, painter in (("same", warm), ("other", lambda x: 1.0 - x)):
        row = ViewRow(label, [paint_at_scale(warm, p, 32) for p in photos])  # the gallery's pictures
        row.network = paint_sizes(painter, photos, 32, sizes=(512, 1024))
        assert [im.shape for im in row.network[1024]] == [(1024, 1024, 3)] * 2
        judge_row(row, judge, 64)
        rows.append(row)
    same, other = rows
    assert abs(same.scores["512"]["style"] - same.scores["gallery"]["style"]) < 0.05
    assert abs(same.scores["1024"]["content"] - same.scores["gallery"]["content"]) < 0.05
    assert abs(other.scores["512"]["content"] - other.scores["gallery"]["content"]) > 0.10
    assert set(same.strokes) == {"gallery", "512", "1024"} and all(np.isfinite(v) for v in same.strokes.values())
    summary = summarise_view(rows)
    assert summary["512 within"] == 1 and summary["rows"] == 2
    report = format_view_report(rows, summary, 64)
    assert "512 px: 1 of 2 rows within ±0.10" in report and "| same " in report
    assert view_sheet(rows, cell=32).shape[0] == 4 * (32 + 4) + 4  # a row per trial and photo


def test_recipe_paper_is_the_papers_from_scratch_run_and_typed_flags_shrink_it():
    import argparse

    from bench.fidelity import bench_settings

    def parsed(**typed):
        names = ("recipe", "network", "size", "batch", "width", "steps", "lr", "checkpoint_every", "tune")
        return argparse.Namespace(**{"seed": 0, **dict.fromkeys(names), **typed})

    settings, explicit = bench_settings(parsed(recipe="paper"))
    assert {k: settings[k] for k in ("arch", "size", "batch", "steps", "lr", "tune", "width", "recipe")} == \
        {"arch": "johnson", "size": 256, "batch": 4, "steps": 40_000, "lr": 1e-3, "tune": "all", "width": 1.0,
         "recipe": "paper"}
    assert settings["checkpoint_every"] == 2000 and explicit == {"steps": 40_000, "lr": 1e-3}
    small, _ = bench_settings(parsed(recipe="paper", network="fast", width=0.25, size=64, steps=3000))
    assert (small["arch"], small["width"], small["size"], small["steps"], small["lr"], small["tune"]) == \
        ("fast", 0.25, 64, 3000, 1e-3, "all")
    study, explicit = bench_settings(parsed(recipe="study"))
    assert (study["arch"], study["tune"], study["size"]) == ("magenta", "norm", 128) and explicit == {}


def test_recipe_paper_on_a_gatys_study_end_to_end_with_proxies_rendered_from_noise(tmp_path, capsys):
    """`--recipe paper` shrunk to a tiny network: networks from random weights, proxies again from noise, loss curves."""
    from bench.fidelity import main
    from nst.images import save_image
    from tests.conftest import synthetic_photo
    from tests.studyfactory import make_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(url, "fix", networks=("tiny",), n_complete=4, n_pruned=0, n_fail=0)  # a Gatys-proxy study
    data = tmp_path / "data"
    for i in range(3):
        save_image(data / f"p{i}.png", synthetic_photo(48, seed=50 + i, width=56))
    out = tmp_path / "out"
    code = main(["--storage", url, "--study", "fix", "--data", str(data), "--out", str(out), "--trials", "2",
                 "--recipe", "paper", "--network", "fast", "--width", "0.125", "--size", "32", "--batch", "1",
                 "--steps", "4", "--judge-network", "tiny", "--proxy-init", "noise", "--proxy-steps", "3",
                 "--no-default", "--no-magenta", "-q"])
    assert code == 0
    result = json.loads((out / "fidelity.json").read_text())
    s = result["settings"]
    assert (s["recipe"], s["arch"], s["tune"], s["lr"], s["steps"]) == ("paper", "fast", "all", 1e-3, 4)
    assert result["proxy_init"] == "noise" and result["proxy_steps"] == 3
    assert [len(r["loss_curve"]) for r in result["rows"]] == [4, 4] and all(r["steps"] == 4 for r in result["rows"])
    assert all(r["proxy_seconds"] > 0 for r in result["rows"])  # every proxy was rendered again, and timed
    run = json.loads((out / "runs" / f"{result['rows'][0]['label'].replace(' ', '')}-fast" / "run.json").read_text())
    assert run["settings"]["tune"] == "all" and run["network"]["arch"] == "fast"
    assert "proxy init" in (out / "fidelity.md").read_text()
