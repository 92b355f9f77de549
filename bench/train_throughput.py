"""Training throughput of the feed-forward networks, against the machine's matrix-multiply rate.

Usage::

    python bench/train_throughput.py                         # 256 px, batch 4, johnson and fast, vgg16_hed loss
    python bench/train_throughput.py --size 128 --rounds 3   # a quicker look

What it measures, in one process, through the real training code (:class:`trainer.fit.Trainer`
on a throw-away run of generated photos, the default StyleConfig with ``vgg16_hed``):

* **seconds per step** and **images per second** for each network, with the content
  targets computed every step (the default) and read from the precomputed-feature cache
  (``--precompute-features``). The saving of the cache is the difference;
* **FLOPs per step**, counted by TensorFlow's profiler on the traced training step
  (transformation network forward and backward, loss network forward and backward to the
  deepest loss layer, the content network forward unless precomputed, the Gram matrices);
* the machine's **float32 matrix-multiply rate** (2048x2048), timed in the same
  interleaved rounds as the steps, so load from other jobs hits both alike. FLOPs per
  step divided by seconds per step, over that rate, says how close a step runs to what
  this CPU can do at best.

Steps are timed in interleaved rounds (every variant once per round, order rotated) and
the medians reported; batches are drawn once and reused, so data loading is not timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):  # run as `python bench/train_throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, interleaved_medians, machine_summary, matmul_probe  # noqa: E402
from tuner.cliutil import OneLineParser, int_in, run_main  # noqa: E402


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


def measure(size: int, batch: int, rounds: int, archs: Sequence[str]) -> tuple[list[list], str]:
    import tensorflow as tf

    from trainer.features import feature_shape
    from trainer.nets import graph_flops
    from trainer.sample_data import make_sample_photos

    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = root / "photos"
    make_sample_photos(data, count=4 * batch, min_side=size, max_side=size + 64)
    variants = {}
    for arch in archs:
        for precompute in (False, True):
            label = f"{arch}{' + cached content' if precompute else ''}"
            trainer = _make_trainer(root, label.replace(" ", "").replace("+", "_"), arch, size, batch, precompute, data)
            trainer._build_steps()
            batch_data = next(iter(trainer.dataset()))
            step = trainer._train_step
            spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch_data)
            flops = graph_flops(step, spec)
            variants[label] = (trainer, step, batch_data, flops)
            print(f"prepared {label}: {flops / 1e9:.1f} GFLOP per step", file=sys.stderr)

    probe, probe_flops = matmul_probe()
    fns = {label: (lambda s=step, b=batch_data: s(b)["loss"].numpy()) for label, (_, step, batch_data, _) in variants.items()}
    fns["matmul 2048"] = probe
    print(f"timing {rounds} interleaved rounds ...", file=sys.stderr)
    medians = interleaved_medians(fns, rounds=rounds, warmup=1)
    rate = probe_flops / medians["matmul 2048"] / 1e9
    shape = feature_shape(variants[next(iter(variants))][0].config, size)
    bytes_per_photo = 2 * shape[0] * shape[1] * shape[2]
    rows = []
    base = {arch: medians[arch] for arch in archs}
    for label, (_, _, _, flops) in variants.items():
        sec = medians[label]
        arch = label.split()[0]
        achieved = flops / sec / 1e9
        rows.append([label, size, batch, round(sec, 3), round(batch / sec, 3), round(flops / 1e9, 1),
                     round(achieved, 1), f"{100 * achieved / rate:.0f}%",
                     f"{100 * (1 - sec / base[arch]):.0f}%" if label != arch else "-"])
    note = (f"matmul 2048x2048: {rate:.1f} GFLOP/s (median, same rounds); cached content features: "
            f"{shape[0]}x{shape[1]}x{shape[2]} float16 = {bytes_per_photo / 2**20:.2f} MiB per photo")
    return rows, note


def _main(args: argparse.Namespace) -> int:
    print(machine_summary())
    rows, note = measure(args.size, args.batch, args.rounds, args.networks)
    print(format_table(["variant", "px", "batch", "s/step", "img/s", "GFLOP/step", "GFLOP/s", "of matmul",
                        "saved by cache"], rows))
    print(note)
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
