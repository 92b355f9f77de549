"""Export a trained network as a TensorFlow SavedModel or a TFLite file, and prove the copy works.

Both formats take one picture ``(1, H, W, 3)`` in [0, 1] of any size that is a multiple
of the network's stride (4 for johnson, 8 for fast) and return the stylised picture the
same size. Every export is checked before it is reported: the exported file is loaded
back (the TFLite one with the TFLite interpreter, after resizing its input to the test
picture) and its output compared with the Keras network's on a test photo of the run.
The check is written to ``export/verification.json``.

Instance normalisation converts to plain TFLite builtins (MEAN, SQUARED_DIFFERENCE,
RSQRT, MUL, ADD); reflection padding to MIRROR_PAD; the resizes to RESIZE_NEAREST_NEIGHBOR
and RESIZE_BILINEAR. No TensorFlow "select ops" are needed, so the file runs with the
stock interpreter on phones.

``model.keras`` files are only ever loaded with ``safe_mode=True`` (Keras refuses
embedded Python code such as ``Lambda`` layers), and the run's own weights are read
from ``.npz`` arrays, so nothing here executes code taken from a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from trainer.runs import RunFolder, write_json

FORMATS = ("savedmodel", "tflite")
#: Largest allowed difference between the exported and the Keras output (pixel values in [0, 1]);
#: 1/255 would be one grey level.
TOLERANCE = 1e-3


class ExportError(StyletuneError):
    """An export that could not be written or did not reproduce the network."""


def _serving_fn(model):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="image")])
    def serve(image):
        return model(image, training=False)

    return serve


def to_tflite(model) -> bytes:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # Freeze first: handed the live function, the converter keeps Keras 3's weights as
    # resource variables (VAR_HANDLE / READ_VARIABLE) that the interpreter leaves
    # uninitialised, and the output is NaN.
    frozen = convert_variables_to_constants_v2(_serving_fn(model).get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(data: bytes, image: np.ndarray) -> np.ndarray:
    """Run a TFLite model on one ``(H, W, 3)`` picture with the TFLite interpreter."""
    import warnings

    try:  # the standalone LiteRT runtime, if installed, is what phones and servers use
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter announces its move to LiteRT
        interpreter = Interpreter(model_content=data)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], [1, *image.shape], strict=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def verification_picture(run: RunFolder, factor: int, side: int) -> tuple[str, np.ndarray]:
    """A test photo of the run, centre-cropped to a multiple of the network's stride."""
    from nst.images import load_image, resize_longest

    photos = sorted(run.photos.glob("*.png"))
    if photos:
        name, img = photos[0].stem, resize_longest(load_image(photos[0]), side)
    else:
        from nst.images import bundled_photos

        name, path = next(iter(bundled_photos().items()))
        img = resize_longest(load_image(path), side)
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    return name, img[:h, :w]


def _move_into_place(tmp: Path, target: Path) -> None:
    if target.exists():
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    os.replace(tmp, target)


def export(run: RunFolder, model, arch: str, fmt: str, output: str | os.PathLike[str] | None = None,
           *, test_side: int = 256) -> dict[str, Any]:
    """Write the export, verify it against ``model``, and return the verification record."""
    import tensorflow as tf

    from trainer.nets import size_factor

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    target = Path(output) if output else run.export_dir / ("saved_model" if fmt == "savedmodel" else "model.tflite")
    target.parent.mkdir(parents=True, exist_ok=True)
    name, image = verification_picture(run, size_factor(arch), test_side)
    expected = model(image[None], training=False)[0].numpy()

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if fmt == "tflite":
            data = to_tflite(model)
            got = run_tflite(data, image)
            (tmp / "model.tflite").write_bytes(data)
            written = tmp / "model.tflite"
        else:
            module = tf.Module()
            module.serve = _serving_fn(model)
            module.model = model
            tf.saved_model.save(module, str(tmp / "saved_model"), signatures={"serving_default": module.serve})
            loaded = tf.saved_model.load(str(tmp / "saved_model"))
            got = loaded.signatures["serving_default"](image=tf.constant(image[None]))
            got = next(iter(got.values()))[0].numpy()
            written = tmp / "saved_model"
        diff = float(np.max(np.abs(got - expected)))
        if not diff <= TOLERANCE:
            raise ExportError(f"the {fmt} export differs from the network by {diff:.4g} (allowed {TOLERANCE}); "
                              "nothing was written")
        _move_into_place(written, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) if target.is_dir() else target.stat().st_size
    record = {"format": fmt, "path": str(target), "bytes": size, "test_photo": name,
              "test_shape": list(image.shape), "max_abs_diff": diff, "tolerance": TOLERANCE}
    verification = run.export_dir / "verification.json"
    previous: dict[str, Any] = {}
    if verification.exists():
        import json

        try:
            previous = json.loads(verification.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    write_json(verification, {**previous, fmt: record})
    return record


def load_keras(path: str | os.PathLike[str]):
    """Load a ``.keras`` file safely: ``safe_mode=True`` refuses embedded Python code."""
    import keras

    import trainer.nets  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError) as exc:
        raise ExportError(f"{path}: cannot load safely ({str(exc).splitlines()[0]})") from None
