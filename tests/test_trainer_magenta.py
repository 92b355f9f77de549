"""The magenta network: dequantisation, the rebuilt transformer against the shipped ONNX, fine-tuning and resume; recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import synthetic_painting, synthetic_photo

REPO = Path(__file__).resolve().parents[1]


# -- dequantisation, on a hand-made quantised graph ----------------------------------------------


def _quantised_conv_graph():
    """A two-output-channel 1x1 Conv whose int8 weights feed a per-channel DequantizeLinear, as tf2onnx writes them."""
    from onnx import TensorProto, helper, numpy_helper

    q = np.array([[[[10]], [[-4]]], [[[3]], [[127]]]], np.int8)  # (cout=2, cin=2, 1, 1)
    scale = np.array([0.5, 0.01], np.float32)
    zero = np.array([2, -1], np.int8)
    bias_q = np.array([100, -7], np.int32)
    bias_scale = np.array([0.1, 0.2], np.float32)
    inits = [numpy_helper.from_array(q, "transformer/residual/residual1/conv1/weights"),
             numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero, "z"),
             numpy_helper.from_array(bias_q, "b"), numpy_helper.from_array(bias_scale, "bs"),
             numpy_helper.from_array(np.zeros(2, np.int32), "bz")]
    nodes = [helper.make_node("DequantizeLinear", ["transformer/residual/residual1/conv1/weights", "s", "z"],
                              ["w_dequant"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["b_dequant"], axis=0),
             helper.make_node("Conv", ["x", "w_dequant", "b_dequant"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 1])], inits)
    expected_w = (q.astype(np.float32) - zero.reshape(2, 1, 1, 1)) * scale.reshape(2, 1, 1, 1)
    return graph, expected_w, bias_q * bias_scale


def test_dequantisation_is_per_output_channel():
    from nst.transformer import _dequantised_constants

    graph, expected_w, expected_b = _quantised_conv_graph()
    values = _dequantised_constants(graph)
    np.testing.assert_allclose(values["w_dequant"], expected_w)  # channel 0: (10-2)*0.5 = 4; channel 1: (127+1)*0.01
    np.testing.assert_allclose(values["b_dequant"], expected_b, rtol=1e-6)


# -- the architecture without the weights ------------------------------------------------------


def test_magenta_layout_is_johnsons_at_a_quarter_width():
    from nst.layers import norm_layers
    from nst.transformer import build_magenta, conv_names, norm_names
    from trainer.costs import receptive_radius
    from trainer.nets import size_factor

    model = build_magenta()
    assert size_factor("magenta") == 4 and receptive_radius("magenta") == receptive_radius("johnson")
    assert len(norm_layers(model)) == len(norm_names()) == 13
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [8, 16, 32] + [32] * 10 + [16, 8, 3]
    assert [c.use_bias for c in convs] == [True] * 3 + [False] * 13  # no bias in front of a norm layer
    assert len(convs) == len(conv_names())
    x = synthetic_photo(44, width=60)[None]
    assert model(x).shape == x.shape


def test_magenta_refuses_other_widths():
    from nst.errors import ConfigError
    from trainer.fit import Settings

    with pytest.raises(ConfigError, match="width"):
        Settings(data=".", arch="magenta", width=0.5)


def test_the_photo_blend_starts_as_magenta_and_can_return_the_photo():
    from trainer.nets import build_network

    plain = build_network("magenta", 0.25, seed=4)
    blended = build_network("magenta", 0.25, seed=4, photo_skip=True)
    x = synthetic_photo(36, seed=1, width=48)[None]
    np.testing.assert_array_equal(blended(x).numpy(), plain(x).numpy())  # a = 0: Magenta's picture
    blend = blended.get_layer("photo_blend")
    blend.a.assign([1.0, 0.0, 0.5])  # all of the photo's red, none of its green, half its blue
    out, painted = blended(x).numpy(), plain(x).numpy()
    np.testing.assert_allclose(out[..., 0], x[..., 0], atol=1e-6)
    np.testing.assert_allclose(out[..., 1], painted[..., 1], atol=1e-6)
    np.testing.assert_allclose(out[..., 2], (x[..., 2] + painted[..., 2]) / 2, atol=1e-6)


# -- against the shipped model (real weights) ----------------------------------------------------


@pytest.fixture(scope="module")
def magenta():
    """The rebuilt network with a synthetic painting's style vector folded in."""
    from nst.transformer import build_magenta, painting_vector, pretrained_weights, read_onnx_weights

    weights = read_onnx_weights()
    vector = painting_vector(synthetic_painting(96))
    model = build_magenta()
    pretrained_weights(model, vector, weights)
    return model, vector


def _float_session():
    """The shipped graph with the activation quantisation removed: the same network in float32 (what
    :mod:`nst.arbitrary` runs)."""
    from nst.arbitrary import session

    return session("arbitrary_transform")


def _feeds(session, photo, vector):
    return {s.name: (np.asarray(vector, np.float32).reshape(s.shape) if s.shape[-1] == 100 else photo[None])
            for s in session.get_inputs()}


@pytest.mark.weights
def test_rebuilt_network_equals_the_float_graph_and_is_close_to_the_int8_one():
    import onnxruntime as ort

    from nst.arbitrary import model_path
    from nst.images import bundled_photos, load_image, resize
    from nst.transformer import build_magenta, painting_vector, pretrained_weights

    # A real photo and painting: on flat synthetic pictures some deep channels have almost no
    # variance, and 1/sqrt(variance + eps) magnifies float32 summation-order noise to 2e-3.
    vector = painting_vector(load_image(REPO / "examples" / "monet.jpg"))
    model = build_magenta()
    pretrained_weights(model, vector)
    photo = resize(load_image(bundled_photos()["chelsea"]), (384, 384)).astype(np.float32)  # the export's size
    ours = model(photo[None]).numpy()[0]
    exact = _float_session().run(None, _feeds(_float_session(), photo, vector))[0][0]
    np.testing.assert_allclose(ours, exact, atol=1e-4)  # same arithmetic: measured max 4.5e-6
    shipped = ort.InferenceSession(str(model_path("arbitrary_transform")), providers=["CPUExecutionProvider"])
    int8 = shipped.run(None, _feeds(shipped, photo, vector))[0][0]
    assert np.abs(ours - int8).mean() < 0.05  # int8 activations round; measured 0.033 on a real photo


@pytest.mark.weights
def test_any_size_works_because_the_network_is_fully_convolutional(magenta):
    model, _ = magenta
    for h, w in ((64, 96), (132, 100)):
        out = model(synthetic_photo(h, width=w)[None]).numpy()
        assert out.shape == (1, h, w, 3) and np.isfinite(out).all()


def new_magenta_run(tmp_path, name="run", **settings):
    from tests.test_trainer_fit import new_run

    return new_run(tmp_path, name, arch="magenta", **{"width": 1.0, "lr": 1e-3, **settings})


@pytest.mark.weights
def test_fine_tuning_starts_from_magentas_result_and_resumes_identically(tmp_path, magenta):
    from nst.transformer import build_magenta, painting_vector, pretrained_weights
    from trainer.fit import Trainer

    straight = Trainer(new_magenta_run(tmp_path / "a"), progress=False)
    reference = build_magenta()
    pretrained_weights(reference, painting_vector(straight.style))
    x = synthetic_photo(32)[None]
    np.testing.assert_array_equal(straight.model(x).numpy(), reference(x).numpy())  # step 0 is Magenta's network
    straight.train(until=4)

    first = Trainer(new_magenta_run(tmp_path / "b"), progress=False)
    first.train(until=2)
    resumed = Trainer(first.run, progress=False)  # reads the checkpoint, not the ONNX file
    assert resumed.step == 2
    resumed.train(until=4)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same data, same optimiser state: bit-identical
    assert not np.array_equal(straight.model(x).numpy(), reference(x).numpy())  # and it did train


def test_tflite_export_of_the_magenta_network_matches_keras(tmp_path):
    from tests.test_trainer_fit import new_run
    from trainer.export import export, run_tflite
    from trainer.nets import build_network

    model = build_network("magenta", seed=3, photo_skip=True)  # the blend too: a superset of the plain network
    model.get_layer("photo_blend").a.assign([0.2, 0.5, 0.8])
    run = new_run(tmp_path)  # any run folder: the export is checked on its test photo
    record = export(run, model, "magenta", "tflite", test_side=64)
    assert record["max_abs_diff"] <= record["tolerance"]
    img = synthetic_photo(40, seed=3, width=52)  # another size than the check used, a multiple of 4
    np.testing.assert_allclose(run_tflite(Path(record["path"]).read_bytes(), img), model(img[None]).numpy()[0],
                               atol=1e-3)


# -- recipes ------------------------------------------------------------------------------------


def test_auto_recipe_fine_tunes_magenta_on_a_cpu_and_keeps_the_paper_for_gpus():
    from trainer.recipe import RECIPES, choose_recipe

    cpu, gpu = choose_recipe("auto", gpus=0), choose_recipe("auto", gpus=2)
    assert cpu.name == "cpu" and cpu.arch == "magenta" and cpu.size <= 256
    assert gpu.name == "gpu" and gpu.size == 256 and gpu.steps >= cpu.steps
    paper = choose_recipe("paper", gpus=0)
    assert (paper.arch, paper.size, paper.batch, paper.steps) == ("johnson", 256, 4, 40_000)
    assert set(RECIPES) == {"cpu", "gpu", "paper"}


def test_typed_flags_override_the_recipe_one_by_one():
    from trainer.recipe import RECIPES, settings_for

    defaults = {"arch": "johnson", "size": 256, "steps": 40_000, "seed": 0}
    cpu = RECIPES["cpu"]
    got = settings_for(cpu, {"steps": 77, "size": 192}, defaults)
    assert got == {"arch": "magenta", "size": 192, "batch": cpu.batch, "steps": 77, "lr": cpu.lr, "tune": "norm",
                   "seed": 0}


@pytest.mark.weights
def test_norm_only_tuning_with_the_photo_blend_tunes_the_blend_and_resumes_identically(tmp_path):
    from nst.layers import InstanceNorm, PhotoBlend
    from trainer.fit import Trainer

    run = new_magenta_run(tmp_path, tune="norm", photo_skip=True, lr=0.05)
    trainer = Trainer(run, progress=False)
    assert {type(layer) for layer in trainer.model.layers if layer.trainable_weights} == {InstanceNorm, PhotoBlend}
    trainer.train(until=3)
    assert np.abs(trainer.model.get_layer("photo_blend").a.numpy()).max() > 0  # it learned something
    resumed = Trainer(run, progress=False)  # the blend's three numbers come back from the checkpoint
    assert resumed.step == 3 and resumed.model.get_layer("photo_blend") is not None
    for a, b in zip(trainer.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_norm_only_tuning_changes_nothing_but_gamma_and_beta_and_resumes(tmp_path):
    from nst.layers import InstanceNorm
    from tests.test_trainer_fit import new_run
    from trainer.fit import Trainer

    trainer = Trainer(new_run(tmp_path, tune="norm"), progress=False)
    before = {w.path: w.numpy().copy() for w in trainer.model.weights}
    trainer.train(until=2)
    norm_paths = {w.path for layer in trainer.model.layers if isinstance(layer, InstanceNorm) for w in layer.weights}
    changed = {w.path for w in trainer.model.weights if not np.array_equal(before[w.path], w.numpy())}
    assert changed and changed <= norm_paths
    resumed = Trainer(trainer.run, progress=False)
    assert len(resumed.model.trainable_weights) == len(norm_paths)
    assert all(np.array_equal(a, b) for a, b in zip(trainer.model.get_weights(), resumed.model.get_weights(), strict=True))


@pytest.mark.parametrize("seconds, expected", [(1.0, 600), (6.0, 500), (10.0, 300), (1000.0, 50), (0.0, 600)])
def test_steps_are_fitted_to_the_cpu_budget(seconds, expected):
    from trainer.recipe import fit_steps_to_budget

    assert fit_steps_to_budget(600, seconds, budget_minutes=50) == expected


@pytest.mark.parametrize("seconds", [0.5, 8.0, 1000.0])
def test_fitting_to_the_budget_never_adds_steps(seconds):
    """A network-proxy trial of a 30-step study trains 30 steps, however fast or slow a step is."""
    from trainer.recipe import fit_steps_to_budget

    assert fit_steps_to_budget(30, seconds, budget_minutes=50) == 30


def test_unknown_recipe_is_a_one_line_error():
    from nst.errors import ConfigError
    from trainer.recipe import choose_recipe

    with pytest.raises(ConfigError, match="choose one of auto, cpu, gpu, paper"):
        choose_recipe("fastest", gpus=0)


def test_plan_fits_a_new_cpu_run_into_the_budget_and_records_it(tmp_path, monkeypatch):
    """With a slow step the recipe's steps are cut so the run ends in time; run.json keeps the new end."""
    from tests.test_trainer_fit import new_run
    from trainer.fit import Trainer
    from trainer.recipe import CPU_BUDGET_MINUTES, plan_and_announce

    run = new_run(tmp_path, steps=600, recipe="cpu")
    trainer = Trainer(run, progress=False)
    monkeypatch.setattr(trainer, "measure_step_seconds", lambda: 30.0)
    line = plan_and_announce(trainer, "CPU (2 cores)", fit_budget=True)
    fitted = int(CPU_BUDGET_MINUTES * 60 / 30.0)
    assert trainer.settings.steps == fitted and run.read_info().settings["steps"] == fitted
    assert line.startswith("device: CPU (2 cores); recipe cpu:") and "ETA 50 min" in line and "fitted" in line
    # Typed --steps (fit_budget false) are kept, however long they take.
    trainer.set_steps(600)
    line = plan_and_announce(trainer, "CPU (2 cores)", fit_budget=False)
    assert trainer.settings.steps == 600 and "ETA 5.0 h" in line
