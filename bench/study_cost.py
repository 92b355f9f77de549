"""Study cost: wall time of a default ``tuner search`` study, and what early stopping saves.

Usage::

    python bench/study_cost.py                          # 10 trials of the default study (monet, vgg16_hed)
    python bench/study_cost.py --trials 50              # the full 50-trial study (about 30 min unloaded)
    python bench/study_cost.py --keep /tmp/cost.db      # keep the study ...
    python bench/study_cost.py --analyse /tmp/cost.db   # ... and print the tables again from it, without running
    python bench/study_cost.py --compare-proxies        # the network proxy's study cost beside the Gatys proxy's
    python bench/study_cost.py --compare-proxies --proxies network-plain,network   # the photo blend's cost

What it does, in one process:

1. **Reference**: the cost of one L-BFGS step of the default config on the study's test
   photos (3 photos at 128 px), timed after a warm-up, as seconds per photo and step.
   The design budget quotes 0.21 s per photo-step for an unloaded 2-core machine; the ratio
   of the two is this run's *load factor* (other jobs sharing the CPU), used to scale the
   measured times to an unloaded machine.
2. **The study**: ``--trials`` trials with the default settings in a SQLite storage, *with
   early stopping off*, so every trial runs to its end and records the judge's scores at
   the checkpoint steps (a third and two thirds of the steps).
3. **Early stopping, replayed** on the recorded checkpoints, for both modes:
   the two-objective rule of :mod:`tuner.stopping`, and for ``--tradeoff 1`` Optuna's
   ``PercentilePruner(75)`` semantics on ``style + content``. Rules that need peers act
   once 8 trials reached the same checkpoint; a 10-trial run has too few for that, so each
   trial is judged against all the others (leave one out), which is the rules' behaviour in
   the steady state of a long study. Saved steps are the steps after the checkpoint where
   a rule stops; saved time is the same share of that trial's optimiser time. It also
   counts stopped trials that end on the final Pareto front (a stop that cost a result).
4. **Extrapolation** to a 50-trial study: set-up + 50 trials at the median trial time,
   minus the steady-state saving on the trials after the first 8. Both the measured and
   the unloaded (divided by the load factor) figures are extrapolations from
   ``--trials`` trials, and the table says so.
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

REFERENCE_STEP = 0.21  # s per photo and L-BFGS step, VGG16 at 128 px, unloaded 2-core machine (DESIGN.md)
ROOT = Path(__file__).resolve().parent.parent
BENCH_ATTR = "bench_study_cost"


def step_cost(batch, painting, steps: int = 10, warm: bool = True, config=None) -> float:
    """Seconds per photo and L-BFGS iteration of ``config`` (default: the default config), after a warm-up run."""
    from nst.config import StyleConfig
    from nst.gatys import stylize

    cfg = config or StyleConfig()
    if warm:
        stylize(batch, painting, cfg, steps=3, early_stop_tol=0)  # trace and compile
    r = stylize(batch, painting, cfg, steps=steps, early_stop_tol=0)
    return r.seconds / (r.iterations * len(batch))


def replay_pareto(trials, rule, checkpoints: tuple[int, ...]) -> dict[int, tuple[int, float, str]]:
    """Leave-one-out replay of the two-objective rule on :class:`~tuner.records.TrialRecord` s:
    number -> (step, share of steps saved, why)."""
    from tuner.stopping import checkpoint_points

    out = {}
    for t in trials:
        cps, iters = t.checkpoints, t.iterations or 0
        for step in checkpoints:
            if str(step) not in cps or step >= iters:
                continue
            why = rule.verdict(step, step == checkpoints[0], cps[str(step)][:2],
                               checkpoint_points(trials, step, exclude=t.number))
            if why:
                out[t.number] = (step, (iters - step) / iters, why)
                break
    return out


def replay_percentile(trials, checkpoints: tuple[int, ...], tradeoff: float = 1.0,
                      percentile: float = 75.0) -> dict[int, tuple[int, float, str]]:
    """Leave-one-out replay of ``PercentilePruner(75)`` on ``style + tradeoff * content``."""
    import numpy as np

    def value(t, step):
        cp = t.checkpoints.get(str(step))
        return None if cp is None else cp[0] + tradeoff * cp[1]

    out = {}
    for t in trials:
        iters = t.iterations or 0
        for step in checkpoints:
            mine = value(t, step)
            others = [v for o in trials if o.number != t.number and (v := value(o, step)) is not None]
            if mine is None or step >= iters or len(others) < 8:
                continue
            if mine > np.percentile(others, percentile):
                out[t.number] = (step, (iters - step) / iters, f"above the 75th percentile at step {step}")
                break
    return out


def savings(trials, stops) -> tuple[float, float]:
    """Shares of the steps and of the time that ``stops`` save; the time saved is the proxy's (optimiser) time."""
    steps = sum(t.iterations for t in trials)
    secs = sum(t.seconds for t in trials)
    saved_steps = sum(stops[t.number][1] * t.iterations for t in trials if t.number in stops)
    saved_secs = sum(stops[t.number][1] * t.proxy_seconds for t in trials if t.number in stops)
    return saved_steps / steps, saved_secs / secs


def run(args) -> str:
    import numpy as np

    from tuner.search import SearchOptions, prepare, work

    folder = Path(tempfile.mkdtemp(prefix="study-cost-"))
    url = f"sqlite:///{Path(args.keep).resolve() if args.keep else folder / 'studies.db'}"
    options = SearchOptions(style=args.style, trials=args.trials, storage=url, seed=args.seed, prune=False,
                            quiet=True, study="cost")
    t0 = time.perf_counter()
    prep = prepare(options)
    setup = time.perf_counter() - t0
    batch = np.stack([p.image for p in prep.objective.photos])
    per_step = step_cost(batch, prep.objective.painting)
    print(f"set-up {setup:.1f} s; step cost now {per_step:.3f} s per photo-step (reference {REFERENCE_STEP})",
          flush=True)
    # One trial at a time, each followed by a short probe of the step cost, so every
    # trial's time can be scaled by the load it actually met (the load of a shared
    # machine changes over the minutes a study takes).
    per_trial: list[tuple[float, float]] = []  # (seconds of the trial, probe s per photo-step after it)
    for k in range(1, args.trials + 1):
        t0 = time.perf_counter()
        work(prep, k)
        spent = time.perf_counter() - t0
        probe = step_cost(batch, prep.objective.painting, steps=3, warm=False)
        per_trial.append((spent, probe))
        print(f"trial {k}/{args.trials}: {spent:.1f} s, probe {probe:.3f} s per photo-step", flush=True)
    wall = sum(t for t, _ in per_trial)  # the probes are not part of the study
    prep.study.set_user_attr(BENCH_ATTR, {"setup": setup, "per_step": per_step, "wall": wall,
                                          "per_trial": per_trial, "photos": len(batch),
                                          "machine": machine_summary()})
    return url


#: What ``--proxies`` accepts: the two proxies a user can choose, and the network proxy as
#: studies made before the photo blend ran it (:class:`nst.layers.PhotoBlend`).
PROXY_COLUMNS = {"gatys": "gatys (pixels, L-BFGS)", "network": "network (Magenta, norm layers + blend)",
                 "network-plain": "network without the blend (older studies)"}


def compare_proxies(args) -> None:
    """Default studies with each proxy, one trial of each in turn, in this process; print the cost ratios.

    The studies use the default settings (early stopping on, as a user runs them) and the
    same seed, so their first trials are the same recipes. Alternating trial by trial
    exposes all of them to the same load, which is what makes the ratios fair on a shared
    machine. Every column is divided by the first of ``--proxies``.
    """
    from tuner.search import SearchOptions, prepare, work

    folder = Path(tempfile.mkdtemp(prefix="study-cost-"))
    kinds = tuple(args.proxies.split(","))
    unknown = [k for k in kinds if k not in PROXY_COLUMNS]
    if unknown or len(kinds) < 2:
        raise SystemExit(f"--proxies takes two or more of {', '.join(PROXY_COLUMNS)}, not {args.proxies!r}")
    preps, setup = {}, {}
    for kind in kinds:
        url = f"sqlite:///{folder / (kind + '.db')}"
        t0 = time.perf_counter()
        preps[kind] = prepare(SearchOptions(style=args.style, trials=args.trials, storage=url, seed=args.seed,
                                            quiet=True, study="cost", proxy=kind.removesuffix("-plain")))
        setup[kind] = time.perf_counter() - t0
        if kind == "network-plain":
            preps[kind].objective.blend = False
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for k in range(1, args.trials + 1):
        for kind in (kinds if k % 2 else kinds[::-1]):  # alternate who goes first
            t0 = time.perf_counter()
            work(preps[kind], k)
            times[kind].append(time.perf_counter() - t0)
        print(f"trial {k}/{args.trials}: " + ", ".join(f"{kind} {times[kind][-1]:.1f} s" for kind in kinds), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    total = {k: setup[k] + 50 * med[k] for k in kinds}
    ref = kinds[0]

    def row(label: str, values: dict[str, float], scale: float = 1.0) -> list:
        return [label, *(round(values[k] / scale, 1) for k in kinds),
                *(round(values[k] / values[ref], 2) for k in kinds[1:])]

    print(f"\nmeasured on: {machine_summary()}\n")
    print(format_table(
        ["quantity", *(PROXY_COLUMNS[k] for k in kinds), *(f"{k} / {ref}" for k in kinds[1:])],
        [
            row("set-up (photos, baseline, judge), s", setup),
            row(f"median trial, s (of {args.trials}, interleaved)", med),
            row("first trial (includes tracing), s", {k: times[k][0] for k in kinds}),
            row("50 trials: set-up + 50 x median, min", total, 60.0),
        ]))


def analyse(url: str) -> None:
    import optuna

    from tuner.reader import open_storage, read_record
    from tuner.records import pareto_front, trial_records
    from tuner.stopping import ParetoStopRule, checkpoint_steps

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="cost", storage=open_storage(url))
    info = study.user_attrs[BENCH_ATTR]
    steps = read_record(study).steps
    cps = checkpoint_steps(steps)
    trials = trial_records(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    secs = [t.seconds for t in trials]
    proxy = [t.proxy_seconds for t in trials]
    iters = [t.iterations for t in trials]
    per_step, setup, wall, photos = info["per_step"], info["setup"], info["wall"], info["photos"]
    load = per_step / REFERENCE_STEP
    rule = ParetoStopRule()
    front = {t.number for t in pareto_front(study)}
    mo = replay_pareto(trials, rule, cps)
    so = replay_percentile(trials, cps)
    mo_steps, mo_secs = savings(trials, mo)
    so_steps, so_secs = savings(trials, so)
    med = statistics.median(secs)
    warm = rule.min_peers

    def est(share: float) -> float:
        return setup + warm * med + (50 - warm) * med * (1 - share)

    # Per-trial load correction: each trial's time times (quietest probe / its own probe).
    # The quietest probe of the run is itself at most as fast as an idle machine, so the
    # corrected total is an upper bound of the idle figure.
    per_trial = info.get("per_trial") or []
    quiet = min(p for _, p in per_trial) if per_trial else per_step
    corrected = sum(t * quiet / p for t, p in per_trial)

    print(f"measured on: {info['machine']}")
    print(f"load factor (this run's step cost / {REFERENCE_STEP} s): {load:.2f}")
    print()
    print(format_table(
        ["quantity", "measured (this run)", "reference / scaled to unloaded"],
        [
            ["s per photo-step (vgg16_hed, 128 px)", round(per_step, 3), REFERENCE_STEP],
            ["trials run (early stop off)", len(trials), "-"],
            ["median trial wall time, s", round(med, 1), round(med / load, 1)],
            ["median optimiser steps per trial", statistics.median(iters), steps],
            ["median optimiser share of trial time",
             round(statistics.median(g / s for g, s in zip(proxy, secs, strict=True)), 2), "-"],
            ["trial time / (photos x steps x step cost)",
             round(med / (photos * statistics.median(iters) * per_step), 2), "1 = no overhead"],
            [f"wall time of these {len(trials)} trials, min", round(wall / 60, 1), round(wall / 60 / load, 1)],
            ["two objectives: trials stopped (replay)", f"{len(mo)} of {len(trials)}", "-"],
            ["two objectives: share of steps / time saved", f"{mo_steps:.3f} / {mo_secs:.3f}", "-"],
            ["two objectives: stopped trials on the final front", f"{len(set(mo) & front)}", f"front has {len(front)}"],
            ["--tradeoff 1: trials stopped (replay)", f"{len(so)} of {len(trials)}", "-"],
            ["--tradeoff 1: share of steps / time saved", f"{so_steps:.3f} / {so_secs:.3f}", "-"],
            [f"wall time of these {len(trials)} trials, each scaled by its own probe to the run's quietest, min",
             round(corrected / 60, 1) if per_trial else "-", f"quietest probe {quiet:.3f} s"],
            ["50 trials at the run's quietest load, no early stop / two objectives, min",
             f"{(setup + 50 * corrected / len(per_trial)) / 60:.1f} / "
             f"{(setup + 50 * corrected / len(per_trial) * (1 - mo_secs)) / 60:.1f}" if per_trial else "-",
             "upper bound of an idle machine"],
            ["50 trials, no early stop, min (extrapolated)", round(est(0.0) / 60, 1), round(est(0.0) / 60 / load, 1)],
            ["50 trials, two objectives, min (extrapolated)", round(est(mo_secs) / 60, 1),
             round(est(mo_secs) / 60 / load, 1)],
        ]))
    print()
    print("per trial: number, seconds, steps, stopped at (replay: two objectives / tradeoff), style, content, noise")
    for t in trials:
        s = t.scores
        print(f"  {t.number:3d} {t.seconds:7.1f} {t.iterations:4d} "
              f"{mo.get(t.number, ('-',))[0]!s:>4} {so.get(t.number, ('-',))[0]!s:>4}  {s['style']:.3f} "
              f"{s['content']:.3f} {s['noise']:.2f}{'  front' if t.number in front else ''}"
              f"{'  (' + mo[t.number][2] + ')' if t.number in mo else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--style", default=str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep the study in this SQLite file instead of a temporary one")
    ap.add_argument("--analyse", metavar="DB", help="only print the tables of a study kept with --keep")
    ap.add_argument("--compare-proxies", action="store_true",
                    help="run a default study with each of --proxies, trials interleaved, and print the cost of "
                         "each beside the first")
    ap.add_argument("--proxies", default="gatys,network",
                    help=f"comma-separated, for --compare-proxies: {', '.join(PROXY_COLUMNS)} (default gatys,network)")
    args = ap.parse_args(argv)
    if args.compare_proxies:
        print(machine_summary(), flush=True)
        compare_proxies(args)
        return 0
    if args.analyse:
        analyse(f"sqlite:///{Path(args.analyse).resolve()}")
        return 0
    print(machine_summary(), flush=True)
    analyse(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
