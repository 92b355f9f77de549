"""``trainer fit``: its flags, how typed flags override the recipe, resuming a run, and the run itself.

The defaults shown in ``--help`` are :class:`trainer.settings.Settings`' own (one place
spells them); argparse's defaults are None so that :func:`explicit_settings` can tell a
typed flag from an untyped one, which the recipe and the resume check both need.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nst.cliutil import float_in, int_in

if TYPE_CHECKING:
    from trainer.runs import RunRecord

FIT_EPILOG = """\
examples:
  trainer fit --from-study best --data ~/coco/train2017
  trainer fit --from-study monet:12 --data photos/ --network fast --width 0.5 --steps 5000
  trainer fit --config cfg.json --style examples/monet.jpg --data photos/ --name monet-test
  trainer fit --name monet-test --steps 8000      # resume, and train longer

Where the loss comes from: --from-study best (the trial a person chose in the dashboard
or with `tuner choose`, else the study's best by the documented rule, in the most
recently active study), --from-study STUDY, --from-study STUDY:TRIAL, or --config
with --style. The loss is the study's, computed by the same code. When no trial of the
study beats the off-the-shelf baseline, a note says so (and names `tuner preview`)
before training starts.

Data: any folder tree of photos; Johnson et al. used MS-COCO (80k photos, 256 px crops,
batch 4, 40k steps). Unreadable files are skipped and counted.

Running `trainer fit --name NAME` on an existing run resumes from its newest checkpoint
with the settings in its run.json (only --steps and --data may change). Ctrl-C (or
SIGTERM) finishes the step, saves a checkpoint and prints the command that resumes.

Recipes (--recipe): without a GPU, auto fine-tunes Magenta's pretrained transformer for
the painting (--network magenta --tune norm) on 128 px crops, with the steps fitted to
50 minutes; with a GPU the same on 256 px crops for 4000 steps; --recipe paper is Johnson
et al.'s 40k steps from random weights (days on a CPU). Before the first step trainer fit
prints the device, the recipe and an ETA. A cpu or gpu run from a network-proxy study is
matched to its proxy: rate, steps, photo blend and the side of the pictures the crops are
cut from (--scale-side), each unless typed.
"""

#: Settings fields no flag sets (they come from --data, the recipe and --feature-cache), and flags named otherwise.
_NOT_FLAGS = ("data", "recipe", "feature_cache")
_ARG_OF = {"arch": "network", "precompute": "precompute_features"}


def fit_defaults() -> dict[str, Any]:
    """The training defaults: :class:`trainer.settings.Settings`' field defaults, the one place they are spelled."""
    from dataclasses import fields

    from trainer.settings import Settings

    return {f.name: f.default for f in fields(Settings) if f.name not in _NOT_FLAGS}


def _explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user typed (argparse defaults are None so we can tell)."""
    out = {}
    for key in fit_defaults():
        value = getattr(args, _ARG_OF.get(key, key))
        if value is not None:
            out[key] = value
    return out


def _check_resume(info: RunRecord, args: argparse.Namespace, explicit: dict[str, Any]) -> None:
    from nst.errors import StyletuneError

    recorded = info.settings
    defaults = fit_defaults()  # a setting newer than the run reads as its default, as Settings.from_dict reads it
    for key, value in explicit.items():
        if key == "steps":
            continue
        was = recorded.get(key, defaults.get(key))
        if was != value:
            flag = "--" + _ARG_OF.get(key, key).replace("_", "-")
            raise StyletuneError(f"run {info.name} was made with {flag} {was}, not {value}; "
                                 f"drop the flag to resume, or start a new run with another --name")
    src = info.source
    if args.from_study and args.from_study != src.get("spec"):
        raise StyletuneError(f"run {info.name} was trained from {src.get('spec')!r}, not --from-study {args.from_study}; "
                             "drop the flag to resume, or choose another --name")
    if args.config and src.get("kind") == "config" and str(Path(args.config).resolve()) != src.get("config_file"):
        raise StyletuneError(f"run {info.name} was trained from {src.get('config_file')}; drop --config to resume")


def run_fit(args: argparse.Namespace) -> int:
    """The ``trainer fit`` command: resume the named run or create a new one, then train it and report."""
    from trainer.runs import DEFAULT_RUNS

    explicit = _explicit_settings(args)
    runs_dir = Path(args.runs_dir)
    resume_flags = f" --runs-dir {shlex.quote(str(runs_dir))}" if args.runs_dir != DEFAULT_RUNS else ""
    existing = _existing_run(args, runs_dir)
    new_run = not (existing is not None and existing.exists())
    run = _create_run(args, explicit, runs_dir, resume_flags) if new_run else _resume_run(existing, args, explicit)
    args.resume_hint = f"trainer fit --name {run.name}{resume_flags}"
    _train(args, run, new_run, explicit)
    return 0


def _existing_run(args: argparse.Namespace, runs_dir: Path):
    """The run ``--name`` names (which may not exist yet), or None; a folder that is not a run is refused."""
    from nst.errors import StyletuneError
    from trainer.runs import RunFolder
    from tuner.reader import check_name

    if args.name:
        check_name(args.name, "run name")
    existing = RunFolder(runs_dir / args.name) if args.name else None
    if existing is not None and existing.path.exists() and not existing.exists():
        raise StyletuneError(f"{existing.path} exists but is not a training run (no run.json); choose another --name")
    return existing


def _resume_run(run, args: argparse.Namespace, explicit: dict[str, Any]):
    """Check the typed flags against the run's settings, take a new ``--steps``, say where training resumes."""
    info = run.read_info()
    _check_resume(info, args, explicit)
    if "steps" in explicit and explicit["steps"] != info.settings["steps"]:
        _warn_past_matched_rate(run.name, info, explicit["steps"])
        info = info.with_steps(explicit["steps"])
        run.write_info(info)
    done = run.checkpoint_steps()
    print(f"resuming run {run.name} at step {done[-1] if done else 0} of {info.settings['steps']} "
          f"(loss from {info.source.get('spec')})", file=sys.stderr)
    return run


def _warn_past_matched_rate(name: str, info: RunRecord, steps: int) -> None:
    """A note when a run whose rate was matched to the study's proxy is asked to go on for more steps at it."""
    from trainer.recipe import proxy_matched_settings

    proxy, was = info.source.get("proxy"), info.settings
    matched_lr = proxy_matched_settings(proxy, was, {"steps": was["steps"]}).get("lr")
    if steps > was["steps"] and matched_lr is not None and math.isclose(matched_lr, was["lr"]):
        print(f"note: run {name} trains at a rate matched to the study's proxy for "
              f"{was['steps']} steps ({was['lr']:g}); going on to {steps} "
              f"at that rate moves the network past the trial's look, where a new run with --steps "
              f"{steps} spreads the rate over them", file=sys.stderr)


def _create_run(args: argparse.Namespace, explicit: dict[str, Any], runs_dir: Path, resume_flags: str):
    """A new run folder: the recipe's settings under the typed flags, the loss's source, the data scanned."""
    from nst.errors import StyletuneError
    from nst.images import check_output
    from trainer.data import scan_photos
    from trainer.fit import create_run
    from trainer.runs import RunFolder
    from tuner.reader import check_name

    if not args.data:
        raise StyletuneError("a new run needs --data DIR, a folder of training photos (the paper used MS-COCO)")
    check_output(runs_dir, folder=True, what="--runs-dir")
    from trainer.source import resolve_source

    src = resolve_source(from_study=args.from_study, storage=args.storage, artifacts=args.artifacts,
                         config=args.config, style=args.style, preview=args.preview)
    settings_kw, scratch = _recipe_settings(args, explicit, src)
    settings = _matched_settings(args, explicit, settings_kw, src["source"])
    name = args.name or check_name(f"{src['default_name']}-{settings.arch}", "run name")
    run = RunFolder(runs_dir / name)
    if run.path.exists():
        raise StyletuneError(f"a run named {name} already exists in {runs_dir}; resume it with "
                             f"`trainer fit --name {name}{resume_flags}` or give a new --name")
    scan = scan_photos(args.data, progress=not args.quiet)
    if scratch:  # once the inputs are known good, like the note below
        print(scratch, file=sys.stderr)
    if src["baseline_note"]:  # once the inputs are known good: a note, not a refusal, so it still trains
        print(f"note: {src['baseline_note']}", file=sys.stderr)
    print(scan.describe(), file=sys.stderr)
    command = "trainer " + " ".join(shlex.quote(a) for a in (args.argv or []))
    create_run(run, settings, src["config"], style_bytes=src["style_bytes"], style_suffix=src["style_suffix"],
               source=src["source"], photos=src["photos"], scan=scan, command=command)
    print(f"new run {run.name} in {run.path}", file=sys.stderr)
    return run


def _recipe_settings(args: argparse.Namespace, explicit: dict[str, Any],
                     src: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The recipe's settings under the typed flags, as keywords, and the line to print when ``paper`` was set aside.

    The recipe follows the study's proxy and this machine's devices (:func:`trainer.recipe.recipe_for_proxy`).
    """
    from trainer.recipe import device_summary, recipe_for_proxy, scratch_line, settings_for

    _, gpus = device_summary()
    recipe, set_aside = recipe_for_proxy(args.recipe, gpus, src["source"].get("proxy"))
    settings_kw = {**settings_for(recipe, explicit, fit_defaults()), "recipe": recipe.name}
    if args.feature_cache:
        settings_kw["feature_cache"] = args.feature_cache
    return settings_kw, scratch_line(src["config"], recipe) if set_aside else None


def _matched_settings(args: argparse.Namespace, explicit: dict[str, Any], settings_kw: dict[str, Any],
                      source: dict[str, Any]):
    """The run's Settings, with the steps and rate matched to the study's proxy where it has one (and says so)."""
    from trainer.fit import Settings
    from trainer.recipe import describe_match, proxy_matched_settings

    matched = proxy_matched_settings(source.get("proxy"), settings_kw, explicit)
    if matched:
        settings_kw = {**settings_kw, **matched}
        print(describe_match(matched, source["proxy"]), file=sys.stderr)
    return Settings(data=str(Path(args.data).resolve()), **settings_kw)


def _train(args: argparse.Namespace, run, new_run: bool, explicit: dict[str, Any]) -> None:
    """Announce the plan, train to the run's steps, and print one line with the judge's verdict."""
    from trainer.fit import Trainer
    from trainer.recipe import device_summary, plan_and_announce

    trainer = Trainer(run, progress=not args.quiet, data=args.data)
    fit_budget = new_run and not device_summary()[1] and "steps" not in explicit and args.recipe in ("auto", "cpu")
    print(plan_and_announce(trainer, device_summary()[0], fit_budget=fit_budget), file=sys.stderr)
    trainer.train()
    out = trainer.finish()
    line = f"trained {run.name} to step {trainer.step}; model: {run.model_file}"
    if "trained" in out:
        t, g = out["trained"], out.get("gatys") or {}
        line += "; judge " + ", ".join(f"{k} {t[k]:.3f}" + (f" (trial {g[k]:.3f})" if k in g else "") for k in sorted(t))
    elif "note" in out:
        line += f"; {out['note']}"
    print(line)


def add_fit_parser(sub) -> None:
    """The ``fit`` subcommand, on ``trainer``'s subparsers."""
    from trainer.archs import ARCH_HELP, ARCHS
    from trainer.recipe import CPU_BUDGET_MINUTES, RECIPES
    from trainer.runs import DEFAULT_RUNS
    from trainer.settings import DEFAULT_FEATURE_CACHE, MAX_SCALE_SIDE
    from tuner.reader import DEFAULT_STORAGE

    d = fit_defaults()
    raw = argparse.RawDescriptionHelpFormatter
    f = sub.add_parser("fit", help="train (or resume) a feed-forward network", formatter_class=raw,
                       description="Train the feed-forward network with a study's loss, or resume a run.",
                       epilog=FIT_EPILOG)
    f.add_argument("--from-study", metavar="SPEC", help="best | STUDY | STUDY:TRIAL")
    f.add_argument("--storage", default=DEFAULT_STORAGE, help=f"study storage URL (default {DEFAULT_STORAGE})")
    f.add_argument("--artifacts", help="artifact folder for a non-SQLite storage")
    f.add_argument("--config", help="StyleConfig JSON (with --style), instead of --from-study")
    f.add_argument("--style", help="the painting, with --config")
    f.add_argument("--preview", nargs="+", metavar="PHOTO", help="photos to preview on (default: the study's test photos, "
                   "or scikit-image's bundled photos with --config)")
    f.add_argument("--data", help="folder tree of training photos (e.g. COCO train2017)")
    f.add_argument("--name", help="run name (default: STUDY-tTRIAL-NETWORK or STYLE-NETWORK)")
    f.add_argument("--runs-dir", default=DEFAULT_RUNS, help=f"where runs live (default {DEFAULT_RUNS})")
    f.add_argument("--network", choices=ARCHS, default=None,
                   help="; ".join(f"{name}: {text}" for name, text in ARCH_HELP.items()))
    f.add_argument("--recipe", choices=("auto", "cpu", "gpu", "paper"), default="auto",
                   help="auto (default): cpu without a GPU (fine-tune Magenta's transformer at 128 px, fitted to "
                        "50 min), gpu with one (the same at 256 px, 4000 steps); paper: Johnson et al.'s 40k steps "
                        "from scratch. Flags you type override the recipe's values")
    f.add_argument("--tune", choices=("all", "norm"), default=None,
                   help="what training changes: all weights, or only the normalisation scales and shifts "
                        "(the magenta recipes' choice; see docs/trainer.md)")
    f.add_argument("--width", type=float_in(0.01, 8, "--width"), default=None, help=f"channel multiplier (default {d['width']:g})")
    def by_recipe(field: str) -> str:
        return ", ".join(f"{name} {getattr(r, field):g}" for name, r in RECIPES.items())

    f.add_argument("--size", type=int_in(32, 2048, "--size"), default=None,
                   help=f"training crop in pixels, a multiple of 8 (default: the recipe's, {by_recipe('size')})")
    f.add_argument("--scale-side", type=int_in(0, MAX_SCALE_SIDE, "--scale-side"), default=None, metavar="N",
                   help="resize each training photo so its shortest side is N before cutting the --size crops, so "
                        "a crop is a piece of an N px picture and the strokes are learned at that picture's scale; "
                        "trainer stylize then paints photos at N. 0: crops of the whole photo at --size (default: "
                        "from a network-proxy study that records its paint side, that side; else 0)")
    f.add_argument("--batch", type=int_in(1, 256, "--batch"), default=None,
                   help=f"crops per step (default: the recipe's, {by_recipe('batch')})")
    f.add_argument("--steps", type=int_in(1, 10_000_000, "--steps"), default=None,
                   help=f"training steps (default: the recipe's, {by_recipe('steps')}, cpu fitted to "
                        f"{CPU_BUDGET_MINUTES:g} min; from a network-proxy trial, the study's proxy steps)")
    f.add_argument("--lr", type=float_in(1e-7, 0.5, "--lr"), default=None,
                   help=f"Adam learning rate (default: the recipe's, {by_recipe('lr')}; from a network-proxy trial, "
                        "the proxy's rate, spread over --steps when they are more than the proxy took)")
    f.add_argument("--seed", type=int_in(0, 2**31 - 1, "--seed"), default=None, help=f"weights and data order (default {d['seed']})")
    f.add_argument("--preview-every", type=int_in(1, 10_000_000, "--preview-every"), default=None,
                   help=f"steps between previews (default {d['preview_every']})")
    f.add_argument("--checkpoint-every", type=int_in(1, 10_000_000, "--checkpoint-every"), default=None,
                   help=f"steps between checkpoints (default {d['checkpoint_every']})")
    f.add_argument("--keep-checkpoints", type=int_in(1, 1000, "--keep-checkpoints"), default=None,
                   help=f"newest checkpoints kept (default {d['keep_checkpoints']})")
    f.add_argument("--preview-size", type=int_in(32, 2048, "--preview-size"), default=None,
                   help="longest side of previews and results (default: the side the network paints at, "
                        "--scale-side when set, else --size)")
    f.add_argument("--photo-skip", action="store_const", const=True, default=None,
                   help="start from the photo: add the photo around the network, so it learns a change to it "
                        "(the feed-forward counterpart of init=content); for --network magenta, a learned blend "
                        "toward the photo per colour, on by default from a study whose proxy has it (docs/trainer.md)")
    f.add_argument("--precompute-features", action="store_const", const=True, default=None,
                   help="cache the content features of every photo on disk (fixed centre crops; see docs/trainer.md)")
    f.add_argument("--feature-cache", help=f"where cached features live (default {DEFAULT_FEATURE_CACHE})")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=run_fit)
