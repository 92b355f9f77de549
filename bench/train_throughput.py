"""Training throughput of the feed-forward networks, against the machine's matrix-multiply rate.

Usage::

    python bench/train_throughput.py                         # 256 px, batch 4, johnson and fast, vgg16_hed loss
    python bench/train_throughput.py --size 128 --rounds 3   # a quicker look

What it measures, in one process, through the real training code (:class:`trainer.fit.Trainer`
on a throw-away run of generated photos, the default StyleConfig with ``vgg16_hed``):

* **seconds per step** and **images per second** for each network, with the content
  targets computed every step (the default) and read from the precomputed-feature cache
  (``--precompute-features``). The measured saving of the cache is the difference; the
  content network's forward pass timed on its own, in the same rounds, is what it could
  save at most;
* **FLOPs per step**, counted from the layer shapes (:func:`step_flops`): exactly the
  work a step has to do and no more. For every convolution of the transformation network
  its forward pass, the gradient with respect to its input (except the first, whose input
  is the photo) and with respect to its weights; for the loss network up to the deepest
  loss layer its forward pass and the gradient with respect to its input only (its weights
  are frozen); the Gram matrices and their gradients; the content network's forward pass
  unless the targets come from the cache. Each convolution costs 2 FLOPs per multiply-add
  (``2 Ho Wo k^2 Cin Cout``), and each of its two gradients costs the same as the forward
  pass. Normalisation, padding, activations and pooling are left out (a few percent);
* a check that this is what TensorFlow really runs: the traced step is put through
  Grappler, TensorFlow's graph optimiser, and the convolution and Gram ops that survive
  are counted and compared with the ops :func:`step_flops` counted. (TensorFlow's own
  FLOP profiler is no use for a training step: it counts the traced graph, in which the
  gradient of every convolution has both a weight and an input gradient op, including the
  weight gradients of the frozen loss network and the whole unused gradient of the content
  network, all of which are pruned before the step runs. At 256 px, batch 4 it reported
  1084 GFLOP for a johnson step that does 693);
* the machine's **float32 matrix-multiply rate** (2048x2048), timed in the same
  interleaved rounds as the steps, so load from other jobs hits both alike. FLOPs per
  step divided by seconds per step, over that rate, says how close a step runs to what
  this CPU can do at best.

Steps are timed in interleaved rounds (every variant once per round, order rotated) and
the medians reported; batches are drawn once and reused, so data loading is not timed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/train_throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, interleaved_medians, machine_summary, matmul_probe  # noqa: E402
from nst.cliutil import OneLineParser, int_in, run_main  # noqa: E402

#: Op types whose count is compared with the plan of :func:`step_flops` (Grappler's fused
#: convolution counts as a convolution).
_CHECKED_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative",
                "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter", "Einsum")


def _make_trainer(root: Path, name: str, arch: str, size: int, batch: int, precompute: bool, data: Path):
    from nst.config import StyleConfig
    from nst.images import load_image
    from trainer.data import scan_photos
    from trainer.fit import Settings, Trainer, create_run
    from trainer.runs import RunFolder

    style = Path(__file__).resolve().parents[1] / "examples" / "monet.jpg"
    run = RunFolder(root / "runs" / name)
    settings = Settings(data=str(data), arch=arch, size=size, batch=batch, steps=10**6, precompute=precompute,
                        feature_cache=str(root / "cache"))
    load_image(style)
    create_run(run, settings, StyleConfig(), style_bytes=style.read_bytes(), style_suffix=".jpg",
               source={"kind": "config", "spec": "bench"}, photos={}, scan=scan_photos(data, progress=False))
    return Trainer(run, progress=False)


def _transform_ops(model: Any) -> list[tuple[str, float]]:
    """``(op type, multiply-adds per image)`` of every convolution of a transformation network, in order.

    ``model`` must have a static input size. A separable convolution is two ops, a
    depthwise ``k x k`` filter per channel and a 1x1 pointwise mix, as TensorFlow runs it.
    """
    import keras

    ops = []
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D)):
            continue
        _, h, w, cout = layer.output.shape
        k = layer.kernel_size[0] * layer.kernel_size[1]
        cin = layer.input.shape[-1]
        if isinstance(layer, keras.layers.SeparableConv2D):
            mult = layer.depth_multiplier
            ops += [("DepthwiseConv2dNative", h * w * k * cin * mult), ("Conv2D", h * w * cin * mult * cout)]
        else:
            ops.append(("Conv2D", h * w * k * cin * cout))
    return ops


def _loss_net_ops(extractor: Any, size: int) -> tuple[list[float], dict[str, tuple[int, int, int]]]:
    """Multiply-adds per image of each convolution of a loss network, and each output layer's shape."""
    import numpy as np

    from bench.common import conv_flops

    macs = [f / 2 for _, f in conv_flops(extractor.model, size, size)]
    feats = extractor(np.zeros((1, size, size, 3), np.float32))
    shapes = {name: tuple(int(d) for d in feats[name].shape[1:]) for name in extractor.layers}
    return macs, shapes


def step_flops(arch: str, width: float, photo_skip: bool, config: Any, size: int, batch: int,
               cached: bool) -> tuple[dict[str, float], Counter]:
    """FLOPs of one training step by part, and the op types and counts that work takes.

    Returns ``({part: FLOPs per step}, Counter(op type -> count))``. See the module
    docstring for what is counted and why; the counter is what :func:`surviving_ops`
    must find in the optimised graph.
    """
    from nst.lossnets import get_extractor
    from trainer.nets import build_network

    model = build_network(arch, width, photo_skip=photo_skip, input_shape=(size, size, 3))
    t_ops = _transform_ops(model)
    loss_convs, shapes = _loss_net_ops(get_extractor(config.network, config.layers, config.pooling), size)
    content_convs, _ = _loss_net_ops(get_extractor(config.network, [config.content_layer], config.pooling), size)
    fwd = sum(m for _, m in t_ops)
    grams = sum(h * w * c * c for h, w, c in (shapes[n] for n in config.active_style_layers))
    macs = {
        "transform forward": fwd,
        # The first op's input is the photo (or its 2x2 average): no variable upstream, no input gradient.
        "transform backward": (fwd - t_ops[0][1]) + fwd,
        "loss net forward": sum(loss_convs),
        "loss net backward": sum(loss_convs),
        "Gram fwd + bwd": 3 * grams,  # G = F^T F, and dL/dF needs both operands' gradients
        "content forward": 0 if cached else sum(content_convs),
    }
    flops = {part: 2.0 * batch * m for part, m in macs.items()}

    ops: Counter = Counter()
    for i, (kind, _) in enumerate(t_ops):
        ops[kind] += 1
        ops[kind + "BackpropFilter"] += 1
        if i > 0:
            ops[kind + "BackpropInput"] += 1
    ops["Conv2D"] += len(loss_convs) + (0 if cached else len(content_convs))
    ops["Conv2DBackpropInput"] += len(loss_convs)
    ops["Einsum"] += 3 * len(config.active_style_layers)
    return flops, ops


def surviving_ops(concrete_fn: Any) -> Counter:
    """Convolution and Gram op counts of a traced function after Grappler, i.e. what actually runs.

    Functions called from the graph are counted too (Keras layers may stay nested calls).
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    graph = concrete_fn.graph
    meta = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(add_shapes=True), graph=graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(t.name for t in concrete_fn.outputs)
    meta.collection_def["train_op"].CopyFrom(fetch)  # what Grappler must keep alive
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.min_graph_nodes = -1  # optimise however small
    optimised = tf_optimizer.OptimizeGraph(config, meta)
    nodes = list(optimised.node) + [n for f in optimised.library.function for n in f.node_def]
    counts: Counter = Counter()
    for node in nodes:
        op = {"_FusedConv2D": "Conv2D", "_FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}.get(node.op, node.op)
        if op in _CHECKED_OPS:
            counts[op] += 1
    return counts


def measure(size: int, batch: int, rounds: int, archs: Sequence[str]) -> tuple[list[list], list[list], list[str]]:
    import tensorflow as tf

    from trainer.features import feature_shape
    from trainer.sample_data import make_sample_photos

    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = root / "photos"
    make_sample_photos(data, count=4 * batch, min_side=size, max_side=size + 64)
    variants: dict[str, tuple[Any, Any, Any, dict[str, float]]] = {}
    notes = []
    for arch in archs:
        for precompute in (False, True):
            label = f"{arch}{' + cached content' if precompute else ''}"
            trainer = _make_trainer(root, label.replace(" ", "").replace("+", "_"), arch, size, batch, precompute, data)
            batch_data = next(iter(trainer.dataset()))
            step = trainer.step_function()
            spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch_data)
            s = trainer.settings
            parts, planned = step_flops(arch, s.width, s.photo_skip, trainer.config, size, batch, precompute)
            found = surviving_ops(step.get_concrete_function(spec))
            if found != planned:
                diff = {op: (planned.get(op, 0), found.get(op, 0)) for op in _CHECKED_OPS
                        if planned.get(op, 0) != found.get(op, 0)}
                notes.append(f"WARNING {label}: ops counted != ops TensorFlow runs (counted, found): {diff}")
            variants[label] = (trainer, step, batch_data, parts)
            print(f"prepared {label}: {sum(parts.values()) / 1e9:.1f} GFLOP per step; "
                  f"{sum(found.values())} conv/Gram ops after Grappler, {'as' if found == planned else 'NOT as'} counted",
                  file=sys.stderr)

    first = variants[archs[0]]
    content = tf.function(lambda x, e=first[0].content_extractor, n=first[0].config.content_layer: e(x)[n])
    photos = first[2][0] if isinstance(first[2], tuple) else first[2]
    probe, probe_flops = matmul_probe()
    fns = {label: (lambda s=step, b=batch_data: s(b)["loss"].numpy()) for label, (_, step, batch_data, _) in variants.items()}
    fns["content forward"] = lambda: content(photos).numpy()
    fns["matmul 2048"] = probe
    print(f"timing {rounds} interleaved rounds ...", file=sys.stderr)
    medians = interleaved_medians(fns, rounds=rounds, warmup=1)
    rate = probe_flops / medians["matmul 2048"] / 1e9
    content_s = medians["content forward"]

    rows = []
    for label, (_, _, _, parts) in variants.items():
        sec = medians[label]
        arch = label.split()[0]
        flops = sum(parts.values())
        achieved = flops / sec / 1e9
        saved = share = "-"
        if label != arch:
            base = medians[arch]
            saved, share = f"{100 * (1 - sec / base):.0f}%", f"{100 * content_s / base:.0f}%"
        rows.append([label, size, batch, round(sec, 2), round(batch / sec, 3), round(flops / 1e9, 1),
                     round(achieved, 1), f"{100 * achieved / rate:.0f}%", saved, share])

    part_rows = []
    for part in first[3]:
        part_rows.append([part] + [round(variants[a][3][part] / 1e9, 1) for a in archs])
    part_rows.append(["total (no cache)"] + [round(sum(variants[a][3].values()) / 1e9, 1) for a in archs])

    shape = feature_shape(first[0].config, size)
    bytes_per_photo = 2 * shape[0] * shape[1] * shape[2]
    notes += [
        f"matmul 2048x2048: {rate:.1f} GFLOP/s (median, same rounds)",
        f"content fwd alone: the content network's forward pass on the batch, timed on its own in the same rounds "
        f"({content_s:.2f} s, "
        f"{2 * batch * sum(_content_macs(first[0].config, size)) / 1e9:.1f} GFLOP), as a share of the uncached step: "
        "what the cache should save if the parts of a step simply add up",
        f"cached content features: {shape[0]}x{shape[1]}x{shape[2]} float16 = {bytes_per_photo / 2**20:.2f} MiB per photo",
        f"medians of {rounds} interleaved rounds; FLOPs counted from layer shapes (see the module docstring)",
    ]
    return rows, part_rows, notes


def _content_macs(config: Any, size: int) -> list[float]:
    from nst.lossnets import get_extractor

    return _loss_net_ops(get_extractor(config.network, [config.content_layer], config.pooling), size)[0]


def _main(args: argparse.Namespace) -> int:
    print(machine_summary())
    rows, part_rows, notes = measure(args.size, args.batch, args.rounds, args.networks)
    print(format_table(["variant", "px", "batch", "s/step", "img/s", "GFLOP/step", "GFLOP/s", "of matmul",
                        "saved by cache", "content fwd alone"], rows))
    print()
    print(format_table(["GFLOP per step, by part", *args.networks], part_rows))
    print()
    print("\n".join(notes))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="bench/train_throughput.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int_in(32, 1024, "--size"), default=256)
    parser.add_argument("--batch", type=int_in(1, 64, "--batch"), default=4)
    parser.add_argument("--rounds", type=int_in(1, 100, "--rounds"), default=5)
    parser.add_argument("--networks", nargs="+", choices=("johnson", "fast"), default=["johnson", "fast"])
    parser.set_defaults(func=_main)
    return run_main("bench/train_throughput.py", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
