"""Gatys optimiser speed: our engine against the TensorFlow tutorial's recipe, same run.

Usage::

    python bench/gatys_speed.py                                    # 256 px, 1000 reference steps
    python bench/gatys_speed.py --size 128 --reference-steps 200   # quick check, a few minutes
    python bench/gatys_speed.py --variants                         # also ours with jit=False
    python bench/gatys_speed.py --content astronaut --pooling avg  # another bundled photo, average pooling

What it does, in one process, on one network, one size and one pair of images
(``examples/monet.jpg`` onto a scikit-image photo):

1. **Reference**: the recipe of the TensorFlow tutorial "Neural style transfer"
   (Gatys et al. 2015 with Adam): start from the photo, ``tf.Variable`` image,
   ``Adam(learning_rate=0.02, beta_1=0.99, epsilon=0.1)``, one ``tf.function`` step around
   a ``GradientTape`` (no XLA), the image clipped to ``[0, 1]`` after every update, style
   and content targets computed at the start of the run (no cache). It is written out
   here, independently of ``nst.gatys``; only the loss is shared (``nst.losses.config_loss``
   with the same :class:`~nst.config.StyleConfig`), so both minimise the same function
   and their losses compare directly. It runs ``--reference-steps`` steps; the loss of its
   final image is the **target**.
2. **Ours**: ``nst.gatys.stylize(method="lbfgs", early_stop_tol=0)`` with a callback that
   notes (time, loss) every iteration and stops the run once the loss reaches the target.

Both clocks start before the style targets are computed and include the first call's
tracing/compilation, i.e. what a user waits for. The table gives iterations, seconds to
the target, the median seconds per iteration and the ratio.

Compute efficiency: the forward FLOPs of the truncated network are counted from its
layer shapes (``2*Ho*Wo*k*k*Cin*Cout`` per convolution), a loss+gradient evaluation is
taken as 2x that (forward, plus the gradient with respect to the layer input, which costs
one more convolution of the same size; no weight gradients are needed because only the
image is optimised) plus ``4*H*W*C^2`` per Gram matrix (product and its gradient). The
machine's float32 matrix-multiply rate is measured in the same run (2048x2048, median of
7, before and after the runs; the higher is used as the ceiling).

Adam's ``epsilon=0.1`` is the one constant of the recipe that is not scale-free: with
the tutorial's own weights (content 1e4, total variation 30 on a sum) the pixel
gradients are in the tens, far above 0.1, so epsilon hardly matters there. Our loss is
normalised differently (per-element means), which gives gradients near or below 0.1,
where epsilon would damp Adam into slow plain gradient descent. So the reference
minimises ``--reference-loss-scale`` times the loss (default 1e4, the tutorial's
content weight against ours); the scale changes neither the minimiser nor the reported
loss, only puts the recipe back in the regime the tutorial runs it in. Pass 1 to see the
unscaled behaviour.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/gatys_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, interleaved_medians, machine_summary, matmul_probe  # noqa: E402
from bench.gatys_measure import evaluation_flops, loss_and_gradient_probes, make_evaluator, side_by_side  # noqa: E402
from bench.gatys_runs import Run, Turns, default_early_stop, ours, progress_bar, tutorial_reference  # noqa: E402
from nst.cliutil import OneLineParser, float_in, int_in, run_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

EPILOG = """\
examples:
  python bench/gatys_speed.py
  python bench/gatys_speed.py --size 128 --reference-steps 200
  nohup python bench/gatys_speed.py --variants > /tmp/gatys_bench.log 2>&1 &

At 256 px the 1000 reference steps alone take 12+ minutes on an idle 2-core CPU.
"""


def _resolve_content(name_or_path: str) -> Path:
    from nst.errors import ImageError
    from nst.images import bundled_photos

    photos = bundled_photos()
    if name_or_path in photos:
        return photos[name_or_path]
    path = Path(name_or_path)
    if not path.exists():
        raise ImageError(f"{name_or_path}: neither a bundled photo ({', '.join(photos)}) nor an existing file")
    return path


def bench(args: argparse.Namespace) -> int:
    from nst.config import StyleConfig, adapt_config
    from nst.errors import StyletuneError
    from nst.gatys import style_size
    from nst.images import load_image, resize_longest, save_image
    from nst.lossnets import PRETRAINED, get_extractor, get_spec

    base = StyleConfig(pooling=args.pooling)
    if get_spec(args.network).family == get_spec(base.network).family:
        config = base.replace(network=args.network)
    else:  # another architecture (``tiny`` in the smoke test): the same loss at the nearest relative depths
        config = adapt_config(base, args.network).replace(pooling=args.pooling)
    content_path = _resolve_content(args.content)
    content = load_image(content_path, max_side=args.size)
    style = load_image(args.style)
    style_image = resize_longest(style, style_size(content.shape[:2], config.style_scale))
    height, width = content.shape[:2]

    print(f"machine: {machine_summary()}")
    print(f"images: {_short(args.style)} onto {_short(content_path)}, content {width}x{height}, style "
          f"{style_image.shape[1]}x{style_image.shape[0]}; network {config.network}, {config.pooling} pooling, "
          f"layers {', '.join(config.layers)}")
    if config.network not in PRETRAINED:
        print(f"warning: {config.network} has random weights; fine for timing, meaningless for looks")
    print(f"config: {config.to_json(indent=None)}")
    print(f"reference: Adam(lr 0.02, beta1 0.99, eps 0.1) on {args.reference_loss_scale:g} x loss, "
          f"{args.reference_steps} steps", flush=True)

    extractor = get_extractor(config.network, config.layers, config.pooling)  # the one stylize() will use
    evaluate = make_evaluator(extractor, content, style_image, config)

    runs: list[Run] = []
    main_label = "ours: L-BFGS"
    if args.interleave:
        # Both in turns, one step each; ours runs its full --max-steps (the target comes
        # from the reference's end) and its time to the target is read off its clock.
        import threading

        turns = Turns()
        bar, update = progress_bar(args.reference_steps, "reference (tutorial Adam)")
        obar, oupdate = progress_bar(args.max_steps, main_label)
        box: dict[str, Run] = {}
        errors: list[BaseException] = []

        def run_ours() -> None:
            try:
                box["ours"] = ours(content, style, config, -math.inf, args.max_steps, oupdate, main_label,
                                   stop_at_target=False, turns=turns, early_stop_tol=0.0)
            except BaseException as exc:  # reported after the join
                errors.append(exc)

        thread = threading.Thread(target=run_ours, daemon=True)
        thread.start()
        ref = tutorial_reference(extractor, content, style_image, config, args.reference_steps,
                                 args.reference_loss_scale, update, turns=turns)
        thread.join()
        bar.close()
        obar.close()
        if errors:
            raise errors[0]
        runs.append(box["ours"])
    else:
        bar, update = progress_bar(args.reference_steps, "reference (tutorial Adam)")
        ref = tutorial_reference(extractor, content, style_image, config, args.reference_steps,
                                 args.reference_loss_scale, update)
        bar.close()
    ref.final_loss, ref_terms = evaluate(ref.image)
    target = ref.final_loss
    print(f"reference: {ref.iterations} steps in {ref.seconds:.1f} s, final loss {target:.6g} "
          f"(style {ref_terms['style']:.4g}, content {ref_terms['content']:.4g}, tv {ref_terms['tv']:.4g}) "
          "= the target", flush=True)
    if not math.isfinite(target):
        raise StyletuneError(f"the reference run diverged ({ref.note}); lower --reference-loss-scale")

    variants: list[tuple[str, dict, bool]] = [(main_label, {"early_stop_tol": 0.0}, True)]
    if args.variants:
        variants += [
            ("ours: L-BFGS, jit=False", {"early_stop_tol": 0.0, "jit": False}, True),
        ]
    for label, kwargs, stop in variants:
        if args.interleave and label == main_label:
            run = runs[0]
            run.final_loss, terms = evaluate(run.image)
            print(f"{label} (in turns with the reference): {run.iterations} iterations ({run.evaluations} "
                  f"evaluations) in {run.seconds:.1f} s of its own turns, final loss {run.final_loss:.6g} "
                  f"(style {terms['style']:.4g}, content {terms['content']:.4g}, tv {terms['tv']:.4g}); {run.note}",
                  flush=True)
            continue
        bar, update = progress_bar(args.max_steps, label)
        run = ours(content, style, config, target, args.max_steps, update, label, stop_at_target=stop, **kwargs)
        bar.close()
        run.final_loss, terms = evaluate(run.image)
        print(f"{label}: {run.iterations} iterations ({run.evaluations} evaluations) in {run.seconds:.1f} s, "
              f"final loss {run.final_loss:.6g} (style {terms['style']:.4g}, content {terms['content']:.4g}, "
              f"tv {terms['tv']:.4g}); {run.note}", flush=True)
        runs.append(run)

    # ---- compute: one loss+gradient evaluation against matmul, timed in interleaved rounds
    probes, compile_seconds = loss_and_gradient_probes(extractor, content, style_image, config)
    matmul, matmul_flop = matmul_probe(2048)
    medians = interleaved_medians({"matmul": matmul, **probes}, rounds=args.rounds)
    peak = matmul_flop / medians["matmul"] / 1e9
    conv, gram, per_eval = evaluation_flops(extractor, config, height, width)

    # ---- report
    main = runs[0]
    hit = main.reached(target)
    rows = [[ref.name, ref.iterations, f"{ref.seconds:.1f}", "1.00x", ref.median_iteration(), ref.times[0],
             ref.iterations, 1.0]]
    for run in runs:
        reach = run.reached(target)
        rows.append([run.name, reach[0] if reach else "not reached", f"{reach[1]:.1f}" if reach else "-",
                     f"{ref.seconds / reach[1]:.2f}x" if reach else "n/a", run.median_iteration(),
                     run.times[0] if run.times else math.nan, run.iterations, run.final_loss / target])
    print()
    print(f"Time to the tutorial recipe's loss after {args.reference_steps} steps (target {target:.6g}), "
          f"{width}x{height} px:")
    print(format_table(["method", "iterations to target", "s to target", "speed-up", "median s/iter",
                        "1st iter s (tracing)", "iterations run", "final loss / target"], rows))
    if hit:
        print(f"\nours reaches the target {ref.seconds / hit[1]:.2f}x sooner than the reference "
              f"({hit[1]:.1f} s vs {ref.seconds:.1f} s; aim: >= 3x at 256 px)")
    else:
        print(f"\nours did NOT reach the target within {args.max_steps} iterations "
              f"(best {min(main.losses):.6g}); raise --max-steps")

    if args.interleave and hit and main.iterations > 1:
        # The reference outlives ours and runs its last steps alone, usually under less
        # load. At the load both met while taking turns, the comparison is the reference's
        # median step during the turns times its steps, against ours' own clock.
        shared = min(main.iterations, ref.iterations)
        ref_steps = [b - a for a, b in zip(ref.times[:shared - 1], ref.times[1:shared], strict=True)]
        ours_steps = [b - a for a, b in zip(main.times[:-1], main.times[1:], strict=True)]
        ref_in_turns = statistics.median(ref_steps)
        print(f"equal-load view: while taking turns (first {shared} steps) the reference's median step took "
              f"{ref_in_turns:.3g} s and ours {statistics.median(ours_steps):.3g} s; {ref.iterations} reference "
              f"steps at that load are {ref_in_turns * ref.iterations:.0f} s, against ours' {hit[1]:.0f} s to the "
              f"target: {ref_in_turns * ref.iterations / hit[1]:.2f}x sooner")

    t_plain = medians["loss+gradient, tf.function"]
    t_xla = medians["loss+gradient, tf.function + XLA"]
    for run, (_, kwargs, stop) in zip(runs, variants, strict=True):
        reach = run.reached(target)
        if stop and reach:
            t_ours = t_xla if kwargs.get("jit", True) else t_plain
            # evaluations spent until the target (a run in turns went on past it)
            used = reach[0] * run.evaluations / max(1, run.iterations)
            print(f"load-independent view, {run.name}: {used:.0f} loss+gradient evaluations to the target against "
                  f"the reference's {ref.evaluations} (ratio {ref.evaluations / used:.1f}); at the interleaved "
                  f"medians ({t_plain:.3g} s per evaluation without XLA, {t_xla:.3g} s with) that is "
                  f"{ref.evaluations * t_plain / (used * t_ours):.2f}x sooner, one-off tracing excluded")

    # ---- the path there: when each run first came within a few percent of the target
    margins = (1.10, 1.05, 1.02, 1.01, 1.0)
    mrows = []
    for run in [ref, *runs]:
        cells = []
        for m in margins:
            reach = run.reached(target * m)
            cells.append(f"{reach[1]:.0f} s ({reach[0]} it)" if reach else "-")
        mrows.append([run.name, *cells])
    print()
    print("Seconds (iterations) until the loss first got within a margin of the target:")
    print(format_table(["method", *[f"<= {m:.2f} x target" for m in margins]], mrows))
    if args.history:
        import json

        Path(args.history).write_text(json.dumps(
            {"target": target, "config": config.to_dict(), "size": [width, height],
             "runs": {r.name: {"times": r.times, "losses": r.losses, "evaluations": r.evaluations} for r in [ref, *runs]}}))
        print(f"wrote {args.history}")

    stop_at, rule = default_early_stop(main.losses)
    if stop_at is None:
        print(f"stylize's default early stop ({rule}) would not have ended this run before it reached the target")
    else:
        print(f"stylize's default early stop ({rule}) would have ended this run at iteration {stop_at}, "
              f"loss {main.losses[stop_at - 1]:.6g} = {main.losses[stop_at - 1] / target:.3f} x target")

    print()
    print(f"Compute: forward convolutions {conv / 1e9:.2f} GFLOP + Gram products and gradients {gram / 1e9:.3f} GFLOP; "
          f"one loss+gradient evaluation ~ 2 x conv + Gram = {per_eval / 1e9:.2f} GFLOP. Matmul 2048x2048 float32: "
          f"{peak:.1f} GFLOP/s (median of {args.rounds}, interleaved with the two evaluation probes).")
    erows = [["matmul 2048x2048 float32", medians["matmul"], matmul_flop / 1e9, peak, "100%", "-"]]
    for name, secs in list(medians.items())[1:]:
        erows.append([name, secs, per_eval / 1e9, per_eval / secs / 1e9, f"{100 * per_eval / secs / 1e9 / peak:.0f}%",
                      f"{compile_seconds[name]:.1f}"])
    for run in [ref, *runs]:
        secs = run.median_iteration()
        erows.append([f"{run.name} (median iteration)", secs, per_eval / 1e9, per_eval / secs / 1e9,
                      f"{100 * per_eval / secs / 1e9 / peak:.0f}%", "-"])
    print(format_table(["what", "median s", "GFLOP", "GFLOP/s", "of matmul rate", "first call s"], erows))
    evals = ", ".join(f"{r.name} {r.evaluations / max(1, r.iterations):.2f}" for r in runs)
    print(f"(An iteration is one evaluation for Adam and for the median L-BFGS iteration; L-BFGS line searches "
          f"add a few: evaluations per iteration {evals}. The iteration rows ran earlier than the interleaved "
          "probes, under whatever load the machine had then.)")

    if args.image != "none":
        out = Path(args.image.format(size=args.size))
        reach_txt = f"{hit[0]} it, {hit[1]:.0f} s" if hit else f"{main.iterations} it, {main.seconds:.0f} s"
        if hit and main.iterations > hit[0]:  # a run in turns went on past the target
            reach_txt = f"{reach_txt} (shown at {main.iterations})"
        sheet = side_by_side(
            [("photo", content), ("style", style_image),
             (f"tutorial Adam: {ref.iterations} it, {ref.seconds:.0f} s", ref.image),
             (f"ours L-BFGS: {reach_txt}", main.image)],
            height=max(height, 128),
        )
        save_image(out, sheet)
        print(f"\nwrote {_short(out)}")
    return 0


def _short(path: str | Path) -> str:
    """A path relative to the repository or site-packages when it lies inside one, for shorter logs."""
    p = Path(path).resolve()
    for base in (ROOT, *[Path(x) for x in sys.path if x.endswith("site-packages")]):
        try:
            return str(p.relative_to(base))
        except ValueError:
            continue
    return str(path)


def build_parser() -> argparse.ArgumentParser:
    from nst.lossnets import NETWORKS

    p = OneLineParser(prog="gatys_speed.py", description=__doc__, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int_in(32, 1024, "--size"), default=256,
                   help="longest side of the photo in pixels (default 256)")
    p.add_argument("--network", choices=sorted(NETWORKS), default="vgg16_hed", help="loss network (default vgg16_hed)")
    p.add_argument("--pooling", choices=("max", "avg"), default="max",
                   help="pooling in the loss network (default max, as in the tutorial)")
    p.add_argument("--reference-steps", type=int_in(1, 20000, "--reference-steps"), default=1000,
                   help="Adam steps of the reference; its final loss is the target (default 1000)")
    p.add_argument("--max-steps", type=int_in(1, 20000, "--max-steps"), default=1000,
                   help="most L-BFGS iterations ours may take to reach the target (default 1000)")
    p.add_argument("--reference-loss-scale", type=float_in(1e-6, 1e12, "--reference-loss-scale"), default=1e4,
                   help="factor on the loss the reference's Adam sees (see the docstring; default 1e4)")
    p.add_argument("--content", default="chelsea",
                   help="a bundled scikit-image photo (astronaut, chelsea, coffee, rocket) or a path (default chelsea)")
    p.add_argument("--style", default=str(ROOT / "examples" / "monet.jpg"), help="style image (default examples/monet.jpg)")
    p.add_argument("--rounds", type=int_in(1, 100, "--rounds"), default=7,
                   help="interleaved rounds timing matmul against one loss+gradient evaluation (default 7)")
    p.add_argument("--variants", action="store_true",
                   help="also time ours with jit=False (stylize's XLA switch)")
    p.add_argument("--interleave", action="store_true",
                   help="run the reference and ours in turns, one step each, so load changes hit both alike; "
                        "ours then runs all --max-steps and its time to the target is read off its own clock")
    p.add_argument("--history", help="also write every run's (time, loss) per iteration to this JSON file")
    p.add_argument("--image", default=str(ROOT / "docs" / "images" / "bench_gatys_{size}.png"),
                   help="where to save photo | style | reference | ours ({size} is filled in; 'none' to skip)")
    p.set_defaults(func=bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("gatys_speed.py", build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
