"""Which recipe ``trainer fit --from-study`` trains, by the kind of proxy that rendered the study, and the device."""

from __future__ import annotations

import json

import pytest

from trainer.recipe import RECIPES, format_scratch_line, recipe_for_proxy

NETWORK = {"kind": "network", "lr": 0.02, "blend": True, "steps": 50}
GATYS = {"kind": "gatys", "steps": 50}


@pytest.mark.parametrize("gpus", [0, 1])
def test_a_network_proxy_study_and_a_config_file_keep_the_devices_recipe(gpus):
    want = RECIPES["gpu" if gpus else "cpu"]
    assert recipe_for_proxy("auto", gpus, NETWORK) == (want, False)  # magenta, norm layers: what the proxy tuned
    assert recipe_for_proxy("auto", gpus, None) == (want, False)  # --config: no proxy to predict
    assert want.arch == "magenta" and want.tune == "norm"


def test_a_gatys_study_trains_from_random_weights_with_a_gpu():
    recipe, set_aside = recipe_for_proxy("auto", 1, GATYS)
    assert recipe.name == "paper" and not set_aside
    assert (recipe.arch, recipe.tune, recipe.size, recipe.batch, recipe.steps, recipe.lr) == \
        ("johnson", "all", 256, 4, 40_000, 1e-3)  # Johnson et al. 2016, from random weights
    assert recipe_for_proxy("auto", 1, {"steps": 50})[0].name == "paper"  # a study made before proxies were recorded


def test_a_gatys_study_on_a_cpu_falls_back_and_says_so_unless_paper_is_typed():
    assert recipe_for_proxy("auto", 0, GATYS) == (RECIPES["cpu"], True)
    assert recipe_for_proxy("paper", 0, GATYS) == (RECIPES["paper"], False)  # typed: trained as typed, no line
    assert recipe_for_proxy("cpu", 1, GATYS) == (RECIPES["cpu"], False)


def test_the_cpu_line_gives_the_papers_eta_from_flops_and_the_measured_rate():
    # 670 GFLOP a step x 40,000 steps at 31 GFLOP/s = 864,516 s = 10.0 days
    line = format_scratch_line(670.0, 31.0, RECIPES["cpu"])
    assert line == ("gatys-proxy study: its trials predict a network trained from random weights (recipe paper: "
                    "johnson, 256 px, batch 4, 40000 steps), which would take at least 10.0 days here (670 GFLOP a "
                    "step at the 31 GFLOP/s this CPU multiplies matrices at); training recipe cpu instead (magenta "
                    "fine-tuned, which the proxy does not predict) unless you type --recipe paper")
    assert "\n" not in line


def test_fit_from_a_gatys_study_prints_the_line_before_training_on_a_cpu(tmp_path, capsys, monkeypatch):
    import trainer.recipe
    from nst.images import save_image
    from tests.conftest import synthetic_photo
    from tests.test_trainer_cli import make_study, run_cli

    monkeypatch.setattr(trainer.recipe, "measure_matmul_gflops", lambda: 50.0)
    data = tmp_path / "data"
    for i in range(3):
        save_image(data / f"p{i}.jpg", synthetic_photo(48, seed=i, width=60))
    url, _ = make_study(tmp_path / "studies" / "studies.db", proxy={"kind": "gatys"})
    runs = tmp_path / "runs"
    common = ["--storage", url, "--data", data, "--runs-dir", runs, "--size", "32", "--batch", "1", "--steps", "1", "-q"]
    code, _, err = run_cli(["fit", "--from-study", "monet:1", *common, "--name", "cpu"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith("gatys-proxy study:")]
    plan = [i for i, line in enumerate(lines) if line.startswith("device: CPU")]
    assert len(said) == 1 and plan and said[0] < plan[0]  # one line, before the first step
    assert "at least" in lines[said[0]] and "50 GFLOP/s" in lines[said[0]] and "training recipe cpu" in lines[said[0]]
    assert json.loads((runs / "cpu" / "run.json").read_text())["settings"]["arch"] == "magenta"

    # With a GPU (faked), the same study trains the paper's recipe from random weights, and says nothing.
    monkeypatch.setattr(trainer.recipe, "device_summary", lambda: ("1 GPU (fake)", 1))
    code, _, err = run_cli(["fit", "--from-study", "monet:1", *common, "--width", "0.125", "--name", "gpu"], capsys)
    assert code == 0, err
    settings = json.loads((runs / "gpu" / "run.json").read_text())["settings"]
    assert (settings["recipe"], settings["arch"], settings["tune"]) == ("paper", "johnson", "all")
    assert "gatys-proxy study:" not in err and "recipe paper: johnson" in err
