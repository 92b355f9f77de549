"""Inference speed of ``johnson`` against ``fast`` on a 1000x1000 photo, side by side.

Usage::

    python bench/inference_speed.py                                    # untrained weights: speed only
    python bench/inference_speed.py --johnson monet-johnson --fast monet-fast --runs-dir studies/runs
                                                                        # trained runs: speed and judge scores

The reference is the ``johnson`` network (Johnson et al. 2016 with instance
normalisation), timed in the same interleaved rounds as ``fast`` (depthwise-separable
convolutions, half-resolution trunk). The practical-techniques write-ups report about
3x on a CPU for those two changes; the ratio column is ours.

Per network: convolution FLOPs at 1000x1000 (from the layer shapes), median seconds of
one forward pass through TensorFlow (the ``trainer stylize`` path: one traced function
with open height and width) and through the TFLite interpreter (the exported file, XNNPACK
on), and the achieved GFLOP/s against a 2048x2048 matrix multiply timed in the same
rounds. With trained runs, each network's results on its run's test photos are scored
with the judge (:func:`trainer.fit.judge_results`, the study's judge when the run came
from a study), so speed is not read without quality; for a run from a study the scores
the study gave the Gatys render of its trial are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/inference_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, interleaved_medians, machine_summary, matmul_probe  # noqa: E402
from nst.cliutil import OneLineParser, int_in, run_main  # noqa: E402


def _network(arch: str, run: str | None, runs_dir: str):
    """``(model, (stylizer, info) or None)``: a trained run's network, or a fresh one of width 1."""
    from trainer.nets import build_network
    from trainer.stylize import load_stylizer

    if run:
        stylizer, info, _ = load_stylizer(run, runs_dir)
        if stylizer.arch != arch:
            from nst.errors import StyletuneError

            raise StyletuneError(f"run {run} is a {stylizer.arch} network, not {arch}")
        return stylizer.model, (stylizer, info)
    return build_network(arch, 1.0, seed=0), None


def _scores(stylizer, info, runs_dir: str, run: str) -> dict[str, float]:
    """Mean judge scores of a run's network on its own test photos, at its preview size.

    The same photos, size and judge as the ``trained`` entry of the run's ``scores.json``
    (recomputed here so the numbers belong to the checkpoint that was timed).
    """
    import numpy as np

    from nst.images import load_image, resize_longest
    from trainer.fit import judge_results
    from trainer.runs import RunFolder, run_path
    from trainer.settings import preview_side_of

    folder = RunFolder(run_path(run, runs_dir))
    side = preview_side_of(info.settings)
    photos = {p.stem: resize_longest(load_image(p), side) for p in sorted(folder.photos.glob("*.png"))}
    results = {n: stylizer(img) for n, img in photos.items()}
    per_photo, _ = judge_results(info.source.get("judge"), photos, results, load_image(folder.style_file()))
    return {k: float(np.mean([s[k] for s in per_photo.values()])) for k in ("style", "content", "noise")}


def _main(args: argparse.Namespace) -> int:
    import numpy as np
    import tensorflow as tf

    from nst.images import bundled_photos, center_crop_square, load_image
    from trainer.costs import conv_flops
    from trainer.export import to_tflite

    print(machine_summary())
    side = args.size
    photo = center_crop_square(load_image(bundled_photos()["astronaut"]), side)[None].astype(np.float32)
    nets = {"johnson": _network("johnson", args.johnson, args.runs_dir), "fast": _network("fast", args.fast, args.runs_dir)}
    fns, flops = {}, {}
    for arch, (model, _) in nets.items():
        run = tf.function(lambda x, m=model: m(x, training=False),
                          input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
        fns[f"{arch} tf"] = lambda f=run: f(photo).numpy()
        width = float(model.name.split("_w")[-1])
        flops[arch] = conv_flops(arch, width, side, side)
        if not args.no_tflite:
            interpreter = tf.lite.Interpreter(model_content=to_tflite(model), num_threads=os.cpu_count())
            inp = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(inp["index"], list(photo.shape), strict=False)
            interpreter.allocate_tensors()
            out_index = interpreter.get_output_details()[0]["index"]

            def tflite(it=interpreter, i=inp["index"], o=out_index):
                it.set_tensor(i, photo)
                it.invoke()
                return it.get_tensor(o)

            fns[f"{arch} tflite"] = tflite
    probe, probe_flops = matmul_probe()
    fns["matmul"] = probe
    print(f"timing {args.rounds} interleaved rounds at {side}x{side} ...", file=sys.stderr)
    med = interleaved_medians(fns, rounds=args.rounds, warmup=2)
    rate = probe_flops / med["matmul"] / 1e9
    scores = {}
    gatys = {}
    for arch, (_, trained) in nets.items():
        run = args.johnson if arch == "johnson" else args.fast
        scores[arch] = _scores(*trained, args.runs_dir, run) if trained else None
        if trained and isinstance(trained[1]["source"].get("gatys_scores"), dict):
            gatys[arch] = (trained[1]["source"], trained[1]["source"]["gatys_scores"])
    rows = []
    for arch in nets:
        row = [arch, round(flops[arch] / 1e9, 1), round(med[f"{arch} tf"], 3),
               round(med["johnson tf"] / med[f"{arch} tf"], 2),
               round(flops[arch] / med[f"{arch} tf"] / 1e9, 1)]
        if not args.no_tflite:
            row += [round(med[f"{arch} tflite"], 3), round(med["johnson tflite"] / med[f"{arch} tflite"], 2)]
        s = scores[arch]
        row += [f"{s['style']:.3f}" if s else "-", f"{s['content']:.3f}" if s else "-", f"{s['noise']:.3f}" if s else "-"]
        rows.append(row)
    headers = ["network", "GFLOP", "TF s", "TF speed-up", "TF GFLOP/s"]
    if not args.no_tflite:
        headers += ["TFLite s", "TFLite speed-up"]
    headers += ["judge style", "judge content", "judge noise"]
    print(format_table(headers, rows))
    print(f"matmul 2048x2048 in the same rounds: {rate:.1f} GFLOP/s; medians of {args.rounds} rounds; "
          "judge scores: 0 ideal, 1 = no better than the unchanged photo (style, content); noise 1 = as busy as the busier reference")
    for arch, (source, g) in gatys.items():  # the Gatys render the run's settings were picked from
        print(f"{arch}: study {source.get('study')} trial {source.get('trial')} scored its Gatys proxy render "
              + ", ".join(f"{k} {float(g[k]):.3f}" for k in ("style", "content", "noise") if k in g))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="bench/inference_speed.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--johnson", metavar="RUN", help="a trained johnson run (default: fresh weights)")
    parser.add_argument("--fast", metavar="RUN", help="a trained fast run (default: fresh weights)")
    parser.add_argument("--runs-dir", default="studies/runs")
    parser.add_argument("--size", type=int_in(64, 4096, "--size"), default=1000, help="photo side (multiple of 8)")
    parser.add_argument("--rounds", type=int_in(1, 100, "--rounds"), default=7)
    parser.add_argument("--no-tflite", action="store_true", help="time TensorFlow only")
    parser.set_defaults(func=_main)
    return run_main("bench/inference_speed.py", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
