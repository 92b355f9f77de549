"""Search efficiency: hypervolume of our sampler's Pareto front against random search, same run.

Usage::

    python bench/search_efficiency.py                          # surrogate: 64 px, 2 photos, 15 steps
    python bench/search_efficiency.py --seeds 3                # medians over three seeds
    python bench/search_efficiency.py --size 128 --photos 3 --steps 50 --trials 50 --random-trials 100   # the real thing

Ours is what ``tuner search`` runs: multivariate TPE with the constant liar, seeded with
the published recipes, the noise constraint set on every trial. The reference is Optuna's
``RandomSampler`` over the same search space, without recipes. Both run in this process,
in separate temporary studies, with the same painting, photos, judge, proxy and steps,
and with early stopping off so every trial counts fully for both.

The score is the hypervolume of the feasible Pareto front in (style, content), with the
reference point (1, 1): the area of the score square that the front dominates, where
(1, 1) is "no better than doing nothing" on both counts. Larger is better; 1 would be
a perfect result on both scores.

The real proxy (128 px, 3 photos, 50 steps) costs about 40 s a trial, so 150 trials per
seed are about 2 hours on 2 cores. The default is a cheaper *surrogate* of the same search
(64 px, 2 photos, 15 steps): same space, same judge, same samplers, smaller and shorter
proxy runs. The table says which was measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import format_table, machine_summary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float] = (1.0, 1.0)) -> float:
    """Area dominated by ``points`` (minimisation) inside the box below ``ref``, exactly, in 2-D.

    Sweep the points by increasing first score; each one that lowers the front's second
    score adds the rectangle between its height and the previous front height, out to ``ref``.
    """
    pts = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]), key=lambda p: (p[0], p[1]))
    area, prev_y = 0.0, ref[1]
    for x, y in pts:
        if y < prev_y:
            area += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return area


def feasible_points(study, first: int) -> list[tuple[float, float]]:
    """(style, content) of the finished, feasible trials numbered below ``first``."""
    from tuner.records import trial_records

    return [(t.scores["style"], t.scores["content"]) for t in trial_records(study.get_trials(deepcopy=False))
            if t.scored and t.feasible and t.number < first]


def run_one(kind: str, trials: int, seed: int, args, folder: Path):
    from tuner.search import SearchOptions, prepare, work

    opts = SearchOptions(style=args.style, photos=args.photos, size=args.size, steps=args.steps, trials=trials,
                         storage=f"sqlite:///{folder / f'{kind}-{seed}.db'}", seed=seed, prune=False, quiet=True,
                         study=f"{kind}-{seed}", sampler="random" if kind == "random" else "tpe")
    prep = prepare(opts)
    t0 = time.perf_counter()
    work(prep, trials)
    return prep.study, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50, help="our trials (default 50)")
    ap.add_argument("--random-trials", type=int, default=100, help="random-search trials (default 100)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--photos", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--style", default=str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--keep", help="keep the study databases in this folder")
    args = ap.parse_args(argv)

    print(machine_summary())
    surrogate = (args.size, args.photos, args.steps) != (128, 3, 50)
    print(f"proxy: {args.size} px, {args.photos} photos, {args.steps} steps"
          + (" (SURROGATE: smaller and shorter than the default proxy)" if surrogate else " (the default proxy)"))
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="search-eff-"))
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted({n for n in (10, 20, 30, 40, 50, 75, 100, args.trials, args.random_trials)
                          if n <= max(args.trials, args.random_trials)})
    per_seed: list[dict[str, dict[int, float]]] = []
    catch_up: list[float] = []
    for seed in range(args.seeds):
        ours, t_ours = run_one("ours", args.trials, seed, args, folder)
        rand, t_rand = run_one("random", args.random_trials, seed, args, folder)
        hv = {"ours": {n: hypervolume(feasible_points(ours, n)) for n in checkpoints if n <= args.trials},
              "random": {n: hypervolume(feasible_points(rand, n)) for n in checkpoints if n <= args.random_trials}}
        per_seed.append(hv)
        target = hv["ours"][args.trials]
        reach = next((n for n in range(1, args.random_trials + 1)
                      if hypervolume(feasible_points(rand, n)) >= target), None)
        catch_up.append(float(reach) if reach is not None else float("inf"))
        print(f"seed {seed}: ours {args.trials} trials in {t_ours / 60:.1f} min, random {args.random_trials} in "
              f"{t_rand / 60:.1f} min; random search first matches ours@{args.trials} at trial "
              f"{reach if reach is not None else f'>{args.random_trials}'}", flush=True)

    rows = []
    for n in checkpoints:
        o = [s["ours"][n] for s in per_seed if n in s["ours"]]
        r = [s["random"][n] for s in per_seed if n in s["random"]]
        mo = statistics.median(o) if o else None
        mr = statistics.median(r) if r else None
        rows.append([n, round(mo, 4) if mo is not None else "-", round(mr, 4) if mr is not None else "-",
                     round(mo / mr, 2) if mo and mr else "-"])
    print()
    print(format_table(["trials", "hypervolume ours (median)", "hypervolume random (median)", "ratio"], rows))
    med = statistics.median(catch_up)
    needs = f"more than {args.random_trials}" if med == float("inf") else f"{med:g}"
    print(f"\nrandom search needs {needs} trials (median over {args.seeds} seed(s)) to reach the hypervolume of our "
          f"{args.trials}; target: at least {2 * args.trials}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
