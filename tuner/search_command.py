"""``tuner search``: its flags, the command that continues a search, and the summary it prints.

The search itself is :func:`tuner.search.run_search`; the other study subcommands
(``studies``, ``show``, ``best``, ``choose``) are in :mod:`tuner.commands`, which adds this
one's parser first.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from nst.cliutil import float_in, int_in
from nst.config import PROXY_KINDS
from tuner.commands import add_storage_args, front_trials
from tuner.reader import DEFAULT_STORAGE

SEARCH_EPILOG = """\
examples:
  tuner search --style examples/monet.jpg --trials 50        # the main job (about 40 min on 2 CPU cores)
  tuner search --style examples/monet.jpg --trials 50        # same command again: continues the study
  tuner search --style wave.jpg --content photos/ --photos 4 --trials 30 --study wave-mine
  tuner search --style examples/monet.jpg --tradeoff 0.5     # one objective: style + 0.5 * content
  tuner search --style examples/monet.jpg --jobs 2 --storage postgresql://me@db/styletune --artifacts /shared/art

proxy: by default a trial is rendered by the network `trainer fit` will train: Magenta's
pretrained transformer with the painting folded in, its normalisation layers tuned on the
test photos with the trial's loss (--steps Adam steps). Training that trial later runs the
same optimisation on many photos, so the network you take home looks like the trial you
picked (docs/benchmarks.md, fidelity). --proxy gatys renders by optimising the pixels of
each photo instead (Gatys et al.; stronger strokes that no trained network reproduces).

budget: one trial is about 3 photos x 50 steps of VGG16 at 128 px (0.21 s per photo and
step on a 2-core CPU), plus the judge: about 40 s; 50 trials fit in an hour. Hopeless
trials are stopped at a third or two thirds of their steps (--no-early-stop to disable).
On a GPU, raise the proxy: --size 256 --photos 6 --steps 150 (costs 4x per pixel doubling;
a GPU does a 256 px step in milliseconds). Results are judged at the proxy size, so keep
--size at least 128.

resume: run the same command again. Finished trials are kept; a trial cut short by
Ctrl-C, kill -9 or a power cut is run again with the same parameters (after the heartbeat
grace period, 4 x --heartbeat seconds, for a killed worker). Another painting, photo set,
size, step count or objective under the same --study name is refused.

By default every pretrained network with weights on this machine is searched (offline
that is vgg16_hed).
"""

#: ``tuner search`` flags and the SearchOptions fields they set, in the order the resume hint lists them.
_SEARCH_FLAGS = (("--photos", "photos"), ("--size", "size"), ("--steps", "steps"), ("--trials", "trials"),
                 ("--jobs", "jobs"), ("--study", "study"), ("--storage", "storage"), ("--artifacts", "artifacts"),
                 ("--tradeoff", "tradeoff"), ("--networks", "networks"), ("--judge-network", "judge_network"),
                 ("--noise-limit", "noise_limit"), ("--seed", "seed"), ("--heartbeat", "heartbeat"), ("--proxy", "proxy"),
                 ("--judge-at", "judge_at"))


def _search_defaults() -> dict[str, Any]:
    """SearchOptions' field defaults: the one place ``tuner search``'s defaults are spelled."""
    from dataclasses import MISSING, fields

    from tuner.options import SearchOptions

    return {f.name: f.default for f in fields(SearchOptions) if f.default is not MISSING}


def _resume_hint(options) -> str:
    """The command that continues this search: the flags whose values differ from the defaults."""
    defaults = _search_defaults()
    parts = ["tuner", "search", "--style", options.style]
    if options.content:
        parts += ["--content", *options.content]
    for flag, name in _SEARCH_FLAGS:
        value = getattr(options, name)
        if value != defaults[name]:
            parts += [flag, ",".join(value) if isinstance(value, tuple) else str(value)]
    if not options.prune:
        parts.append("--no-early-stop")
    return shlex.join(parts)


def _search(args: argparse.Namespace) -> int:
    from tuner.options import SearchOptions
    from tuner.search import run_search
    networks = tuple(n.strip() for n in args.networks.split(",") if n.strip()) if args.networks else None
    options = SearchOptions(
        style=args.style, content=tuple(args.content) if args.content else None, photos=args.photos,
        size=args.size, view_size=args.view_size, paint_side=args.paint_side, judge_at=args.judge_at, steps=args.steps, trials=args.trials, jobs=args.jobs, study=args.study,
        storage=args.storage, artifacts=args.artifacts, networks=networks, judge_network=args.judge_network,
        noise_limit=args.noise_limit, tradeoff=args.tradeoff, seed=args.seed, prune=not args.no_early_stop, heartbeat=args.heartbeat,
        quiet=args.quiet, proxy=args.proxy,
    )
    args.resume_hint = _resume_hint(options)
    prep = run_search(options)
    name = prep.study.study_name
    storage = "" if args.storage == DEFAULT_STORAGE else f" --storage {shlex.quote(args.storage)}"
    from tuner.liveness import counts
    from tuner.search import best_summary

    c = counts(prep.study)
    front = front_trials(prep.study, include_all=False)
    print(f"{name}: {c['COMPLETE']} done, {c['PRUNED']} stopped early, {c['FAIL']} failed; "
          f"{'Pareto front' if len(prep.study.directions) > 1 else 'feasible'}: {len(front)} trial(s); "
          f"{best_summary(prep.study)}")
    print(f"next: tuner show {name}{storage}  |  tuner choose {name} TRIAL{storage}  |  "
          f"trainer fit --from-study {name}  |  tuner dashboard{storage}")
    return 0


def add_search_parser(sub, fmt: type[argparse.HelpFormatter]) -> None:
    """Add ``tuner search`` to ``tuner``'s subparsers."""
    from nst.cliutil import OneLineParser

    s = sub.add_parser("search", help="search loss settings for a painting (an Optuna study; resumable)",
                       description="Search style-transfer loss settings with cheap proxy renders, judged by a fixed judge.",
                       epilog=SEARCH_EPILOG, formatter_class=fmt)
    s.add_argument("--style", required=True, help="the painting")
    s.add_argument("--content", nargs="+", metavar="PHOTO_OR_FOLDER",
                   help="test photos (files or folders); default: photos bundled with scikit-image")
    d = _search_defaults()
    s.add_argument("--photos", type=int_in(1, 64, "--photos"), default=d["photos"],
                   help=f"how many test photos to use (default {d['photos']})")
    s.add_argument("--size", type=int_in(32, 1024, "--size"), default=d["size"],
                   help=f"proxy size: test photos are cropped to this square (default {d['size']})")
    s.add_argument("--view-size", type=int_in(0, 2048, "--view-size"), default=d["view_size"],
                   help=f"network proxy: each trial's tuned network also paints the test photos at this size (long "
                        f"side, px), which the gallery shows: what trainer stylize gives at that size "
                        f"(default {d['view_size']}; 0: proxy size only). A new study's setting; a resumed one keeps its own")
    s.add_argument("--paint-side", type=int_in(0, 2048, "--paint-side"), default=d["paint_side"],
                   help=f"network proxy: the side (px) the network paints at, which sets the size of its strokes. "
                        f"Each step tunes on --size crops of the test photos scaled to this side, and the trained "
                        f"network paints any photo here before enlarging it (default {d['paint_side']}, the side "
                        f"Magenta's own model paints at; 0: whole photos at --size, strokes of a {d['size']} px "
                        f"picture). Capped at --view-size and at the smallest test photo's short side. A new study's "
                        f"setting; a resumed one keeps its own")
    s.add_argument("--judge-at", choices=("view", "proxy"), default=d["judge_at"],
                   help="the size each trial's final pictures, and the off-the-shelf baseline's, are scored at: "
                        "view (the network proxy's default: the --view-size pictures the gallery shows, what trainer "
                        "stylize gives at that size) or proxy (the pictures shrunk to --size, as studies made before "
                        "were scored; a pick that wins there can lose at the size you use). Checkpoints are judged at --size either way. A new "
                        "study's setting; a resumed one keeps its own")
    s.add_argument("--steps", type=int_in(3, 5000, "--steps"), default=d["steps"],
                   help=f"proxy steps per trial: Adam steps of the network proxy, L-BFGS steps of gatys "
                        f"(default {d['steps']})")
    s.add_argument("--proxy", choices=PROXY_KINDS,
                   help="how trials are rendered: network (default for a new study: the network trainer fit trains, "
                        "tuned on the test photos) or gatys (pixel optimisation); a resumed study keeps its own")
    s.add_argument("--trials", type=int_in(1, 100000, "--trials"), default=d["trials"],
                   help=f"run until the study has this many finished trials (default {d['trials']})")
    s.add_argument("--jobs", type=int_in(1, 64, "--jobs"), default=d["jobs"], help=f"worker processes (default {d['jobs']})")
    s.add_argument("--study", help="study name (default: the painting's file name without extension)")
    add_storage_args(s)
    s.add_argument("--tradeoff", type=float_in(0.0, 100.0, "--tradeoff"),
                   help="one objective instead of two: minimise style + X * content")
    s.add_argument("--networks", help="comma-separated loss networks to search (default: every pretrained one available)")
    s.add_argument("--judge-network", default=d["judge_network"],
                   help=f"style network of the judge (default {d['judge_network']}: Magenta's style predictor, which no "
                        "trial optimises through; a loss network such as vgg16_hed cross-checks)")
    s.add_argument("--noise-limit", type=float_in(0.5, 100.0, "--noise-limit"), default=d["noise_limit"],
                   help=f"judge's speckle limit: results noisier than this are infeasible (default {d['noise_limit']:g}; "
                        "see docs/judge.md)")
    s.add_argument("--seed", type=int, help="sampler seed, for a reproducible search")
    s.add_argument("--no-early-stop", action="store_true", help="run every trial to the end")
    s.add_argument("--heartbeat", type=int_in(1, 3600, "--heartbeat"), default=d["heartbeat"],
                   help="seconds between a running trial's heartbeats; a killed worker's trial is re-run after 4 "
                        f"(default {d['heartbeat']})")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar (one line per trial only)")
    s.set_defaults(func=_search)
    assert isinstance(s, OneLineParser)
