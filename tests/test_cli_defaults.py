"""One set of defaults: the CLIs take theirs from the dataclasses, and the resume hint rebuilds the command."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import MISSING, fields

from trainer.fit import Settings
from tuner.cli import build_parser
from tuner.search import SearchOptions
from tuner.search_command import _resume_hint


def _search_args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["search", *argv])


def _options(args: argparse.Namespace) -> SearchOptions:
    networks = tuple(args.networks.split(",")) if args.networks else None
    return SearchOptions(style=args.style, content=tuple(args.content) if args.content else None, photos=args.photos,
                         size=args.size, steps=args.steps, trials=args.trials, jobs=args.jobs, study=args.study,
                         storage=args.storage, artifacts=args.artifacts, networks=networks,
                         judge_network=args.judge_network, noise_limit=args.noise_limit, tradeoff=args.tradeoff,
                         seed=args.seed, prune=not args.no_early_stop, heartbeat=args.heartbeat)


def test_search_flags_default_to_search_options():
    args = _search_args(["--style", "p.jpg"])
    defaults = {f.name: f.default for f in fields(SearchOptions) if f.default is not MISSING}
    for name in ("photos", "size", "steps", "trials", "jobs", "judge_network", "noise_limit", "heartbeat", "storage"):
        assert getattr(args, name) == defaults[name], name
    assert _options(args) == SearchOptions(style="p.jpg")


def test_resume_hint_names_only_what_differs_and_rebuilds_the_same_search():
    plain = SearchOptions(style="p.jpg")
    assert _resume_hint(plain) == "tuner search --style p.jpg"
    argv = ["--style", "my painting.jpg", "--content", "a.jpg", "b dir", "--photos", "4", "--steps", "20",
            "--networks", "vgg16,vgg16_hed", "--tradeoff", "0.5", "--seed", "3", "--no-early-stop", "--heartbeat", "5"]
    options = _options(_search_args(argv))
    hint = _resume_hint(options)
    assert "--size" not in hint and "--trials" not in hint, "defaults are left out"
    again = shlex.split(hint)
    assert again[:2] == ["tuner", "search"] and _options(_search_args(again[2:])) == options


def test_trainer_defaults_are_the_settings_defaults():
    from trainer.cli import build_parser as trainer_parser
    from trainer.fit_command import fit_defaults as _fit_defaults

    defaults = _fit_defaults()
    own = {f.name: f.default for f in fields(Settings)}
    assert defaults == {k: own[k] for k in defaults} and {"arch", "steps", "lr", "tune"} <= set(defaults)
    actions = {a.dest: a for a in trainer_parser()._subparsers._group_actions[0].choices["fit"]._actions}
    assert f"default {own['seed']}" in actions["seed"].help
    # Steps, rate, crop and batch come from the recipe: the help shows each recipe's own value.
    from trainer.recipe import RECIPES

    for dest in ("steps", "lr", "size", "batch"):
        for name, recipe in RECIPES.items():
            assert f"{name} {getattr(recipe, dest):g}" in actions[dest].help, (dest, name)
