"""``trainer export --format web`` without a browser: the ONNX writer against Keras, the folder, bad input.

The ONNX network is compared with the Keras network it came from with onnxruntime, for
every architecture and for the generic layers the writer claims to cover; the browser
side is ``tests/test_web_browser.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import synthetic_painting, synthetic_photo


def jitter(model, seed: int = 0, scale: float = 0.1) -> None:
    """Move every weight off its initial value, so zero-initialised layers (the photo skip's last
    convolution, biases, norm shifts) take part in the comparison too."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, scale, w.shape).astype(np.float32) for w in model.get_weights()])


def make_web_run(runs_dir: Path, name: str = "webrun", *, arch: str = "johnson", width: float = 0.25,
                 photo_skip: bool = False, seed: int = 3) -> Path:
    """A run folder as ``trainer fit`` leaves it, with a random (untrained) network checkpoint."""
    from nst.images import save_image
    from trainer.nets import build_network
    from trainer.runs import RunFolder, RunRecord

    folder = runs_dir / name
    run = RunFolder(folder)
    (folder / "preview_photos").mkdir(parents=True)
    save_image(folder / "preview_photos" / "photo0.png", synthetic_photo(72, seed=5, width=100))
    save_image(folder / "style.png", synthetic_painting(96))
    run.write_info(RunRecord(name=name, network={"arch": arch, "width": width, "photo_skip": photo_skip}))
    model = build_network(arch, width, photo_skip=photo_skip, seed=seed)
    jitter(model, seed)
    run.save_checkpoint(7, model.get_weights(), [])
    return folder


def run_cli(args: list) -> tuple[int, str, str]:
    """``trainer ...`` as a user runs it, in this process: exit status and both streams."""
    import contextlib
    import io

    from trainer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


# -- the ONNX writer ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch,skip", [("johnson", False), ("johnson", True), ("fast", False), ("fast", True),
                                       ("magenta", False), ("magenta", True)])
def test_onnx_network_reproduces_keras(arch, skip):
    from trainer.nets import build_network
    from trainer.onnx_export import run_onnx, to_onnx

    model = build_network(arch, 0.25, photo_skip=skip, seed=1)
    jitter(model)
    photo = synthetic_photo(48, seed=2, width=80)  # not square: a swapped height and width would show
    expected = model(photo[None], training=False)[0].numpy()
    got = run_onnx(to_onnx(model), photo)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    # One file serves every size: height and width are symbolic.
    other = synthetic_photo(64, seed=4, width=32)
    assert np.abs(run_onnx(to_onnx(model), other) - model(other[None], training=False)[0].numpy()).max() < 1e-4


def test_pretrained_magenta_network_reproduces_keras():
    """The network the CPU recipe fine-tunes, with Magenta's weights and a painting's style folded in."""
    from nst.errors import WeightsUnavailable
    from nst.transformer import painting_vector, pretrained_weights
    from trainer.nets import build_network
    from trainer.onnx_export import run_onnx, to_onnx

    model = build_network("magenta", 1.0)
    try:
        pretrained_weights(model, painting_vector(synthetic_painting(96)))
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))
    photo = synthetic_photo(64, seed=3, width=92)
    expected = model(photo[None], training=False)[0].numpy()
    assert np.abs(run_onnx(to_onnx(model), photo) - expected).max() < 1e-4


def test_generic_layers_reproduce_keras():
    """Layers the project's networks do not use today but a new architecture may: each converter against Keras."""
    import keras

    from nst.layers import InstanceNorm, ReflectionPad
    from trainer.onnx_export import run_onnx, to_onnx

    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((None, None, 3))
    x = L.Conv2D(6, 3, padding="same", strides=2, activation="relu")(inp)  # SAME with an odd leftover row
    x = L.BatchNormalization()(x)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="tanh")(x)
    x = L.Concatenate()([x, L.Conv2D(12, 1)(y)])
    x = L.ZeroPadding2D(((1, 0), (2, 1)))(x)
    x = L.MaxPooling2D(2, padding="same")(x)
    x = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="silu")(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = InstanceNorm()(ReflectionPad(1)(x))
    x = L.Average()([L.ReLU(max_value=1.5, negative_slope=0.1)(x), L.UpSampling2D(1)(x)])
    x = L.Rescaling(0.5, offset=0.1)(L.AveragePooling2D(2)(L.Conv2DTranspose(3, 2, strides=2)(x)))
    model = keras.Model(inp, L.Activation("sigmoid")(x))
    jitter(model, scale=0.2)
    for w in model.layers[2].non_trainable_weights:  # batch-norm running statistics away from 0 and 1
        w.assign(np.abs(w.numpy()) + 0.5)
    photo = synthetic_photo(34, seed=1, width=46)
    expected = model(photo[None], training=False)[0].numpy()
    got = run_onnx(to_onnx(model), photo)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_a_layer_without_converter_is_named():
    import keras

    from trainer.onnx_export import OnnxExportError, to_onnx

    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.GaussianNoise(0.1, name="noisy")(inp))
    with pytest.raises(OnnxExportError, match="noisy .GaussianNoise. has no ONNX converter"):
        to_onnx(model)


# -- the folder -----------------------------------------------------------------------------------


def _runtime_or_skip() -> None:
    from nst.errors import StyletuneError
    from trainer.export import runtime_dir

    try:
        runtime_dir()
    except StyletuneError as exc:
        pytest.skip(str(exc))


def test_export_web_writes_a_checked_self_contained_folder(tmp_path):
    _runtime_or_skip()
    runs = tmp_path / "runs"
    folder = make_web_run(runs, arch="fast", photo_skip=True)
    code, out, err = run_cli(["export", "webrun", "--runs-dir", runs, "--format", "web"])
    assert code == 0, err
    web = folder / "export" / "web"
    assert "max difference" in out and str(web) in out
    manifest = json.loads((web / "manifest.json").read_text())
    for f in ["index.html", "app.js", "imaging.js", "ort/ort.wasm.bundle.min.js", "ort/ort-wasm-simd-threaded.wasm",
              manifest["painting"], *(m["file"] for m in manifest["models"].values())]:
        assert (web / f).is_file() and (web / f).stat().st_size > 0, f
    assert (web / manifest["painting"]).read_bytes() == (folder / "style.png").read_bytes()
    trained = manifest["models"]["trained"]
    assert (trained["arch"], trained["factor"], trained["step"]) == ("fast", 8, 7)
    # The page loads the runtime and its own scripts from the folder only: nothing from the network.
    for page in ("index.html", "app.js", "imaging.js"):
        text = (web / page).read_text()
        assert "http://" not in text.replace("http://localhost", "") and "https://" not in text
    record = json.loads((folder / "export" / "verification.json").read_text())["web"]
    assert record["max_abs_diff"] < 1e-4 and record["test_photo"] == "photo0" and record["test_shape"] == [184, 256, 3]
    # The arbitrary networks in the folder are the ones Python runs: the int8 predictor as shipped, the
    # transformer in float with a free size (tests/test_arbitrary.py checks that form).
    import onnx

    from nst import arbitrary

    for name in arbitrary.MODELS:
        assert (web / "models" / f"{name}.onnx").read_bytes() == arbitrary.model_bytes(name), name
    ops = {n.op_type for n in onnx.load(str(web / "models" / "arbitrary_transform.onnx")).graph.node}
    assert "Conv" in ops and "QuantizeLinear" not in ops
    transform = manifest["models"]["arbitrary_transform"]
    assert (transform["input"], transform["vector_input"]) == ("content_image", "mobilenet_conv/Conv/BiasAdd")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    make_web_run(runs)
    empty = make_web_run(runs, "nomodel")
    for ckpt in (empty / "checkpoints").iterdir():
        ckpt.unlink()

    def refused(args, message, env=None):
        if env:
            for k, v in env.items():
                monkeypatch.setenv(k, v)
        code, _, err = run_cli(args)
        assert code == 2, err
        assert message in err and len(err.strip().splitlines()) == 1, err
        monkeypatch.undo()

    refused(["export", "nomodel", "--runs-dir", runs, "--format", "web"], "no checkpoint yet")
    refused(["export", "webrun", "--runs-dir", runs, "--format", "html"], "invalid choice")
    refused(["export", "webrun", "--runs-dir", runs, "--format", "web"], "onnxruntime-web is missing",
            env={"STYLETUNE_ORT_DIR": str(tmp_path / "nowhere")})
    bad = tmp_path / "badmodels"
    bad.mkdir()
    (bad / "arbitrary_predict.onnx").write_bytes(b"not onnx")
    (bad / "arbitrary_transform.onnx").write_bytes(b"not onnx")
    ort_dir = tmp_path / "ort"
    ort_dir.mkdir()
    for f in ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"):
        (ort_dir / f).write_text("stub")
    refused(["export", "webrun", "--runs-dir", runs, "--format", "web"], "arbitrary_predict.onnx is corrupt",
            env={"STYLETUNE_ORT_DIR": str(ort_dir), "STYLETUNE_ARBITRARY_MODELS": str(bad)})
    for name in ("webrun", "nomodel"):
        assert not (runs / name / "export").exists()
