"""The study subcommands of ``tuner``: ``studies``, ``show``, ``best``, ``choose`` (and ``search``'s parser).

Kept apart from :mod:`tuner.cli` (which owns ``render`` and wires the parsers) so each
command stays a thin layer over :mod:`tuner.search` and :mod:`tuner.reader`; ``search``
itself is in :mod:`tuner.search_command`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from nst.cliutil import int_in
from tuner.reader import (
    DEFAULT_RULE,
    DEFAULT_STORAGE,
    StorageError,
    baseline_note,
    chosen_or_default,
    finished_trials,
    latest_study_name,
    load_study,
    open_storage,
    read_record,
    trial_record,
)
from tuner.records import CHOSEN_ATTR, StudyRecord, TrialRecord, chosen_trial, pareto_front, state_counts

SHOW_EPILOG = """\
examples:
  tuner studies
  tuner show monet                 # the Pareto front (feasible trials), best first
  tuner show monet --all --limit 50
  tuner best monet                 # the chosen trial, or the default rule's pick
  tuner best monet --json > best.json
  tuner best monet --config > cfg.json && tuner render --config cfg.json --style examples/monet.jpg ...
  tuner choose monet 17
"""


def add_storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"study storage: any SQLAlchemy URL (default {DEFAULT_STORAGE}; postgresql://... for several machines)")
    p.add_argument("--artifacts", help="artifact folder; default: artifacts/ beside the SQLite file (needed for other URLs)")


def _load(args: argparse.Namespace, name: str | None):
    storage = open_storage(args.storage)
    name = name or latest_study_name(storage)
    return load_study(storage, name)


def front_trials(study, include_all: bool) -> list[TrialRecord]:
    """The Pareto front (two objectives) or the feasible trials by value (one objective); ``include_all``: every finished trial."""
    if include_all:
        return sorted(finished_trials(study), key=lambda r: r.total)
    if len(study.directions) > 1:
        return pareto_front(study)
    return sorted((r for r in finished_trials(study) if r.feasible), key=lambda r: r.values[0] if r.values else math.inf)


def _front_table(study, limit: int = 20, include_all: bool = False) -> str:
    from tuner.search import _short_layers

    rows = front_trials(study, include_all)
    chosen = chosen_trial(study.user_attrs)
    try:
        pick = chosen_or_default(study)
    except StorageError:
        pick = None
    what = "finished trials" if include_all else ("Pareto front (feasible)" if len(study.directions) > 1 else "best trials")
    lines = [f"{study.study_name}: {what}, {len(rows)} trial(s)" + (f", showing {limit}" if len(rows) > limit else ""),
             f"{'':2}{'trial':>5} {'style':>6} {'content':>7} {'noise':>5}  {'network':<10} {'pool':<4} "
             f"{'content layer':<13} {'style layers':<26} {'R':>7} {'T':>7} {'scale':>5}"]
    for t in rows[:limit]:
        cfg = t.style_config or {}
        mark = "*" if t.number == pick else " "
        mark += "c" if t.number == chosen else " "
        infeasible = " " if t.feasible else "!"
        lines.append(
            f"{mark}{t.number:>5} {t.score('style'):6.3f} {t.score('content'):7.3f} "
            f"{t.score('noise'):5.2f}{infeasible} {cfg.get('network', '?'):<10} {cfg.get('pooling', '?'):<4} "
            f"{cfg.get('content_layer', '?'):<13} {_short_layers(cfg)[:26]:<26} "
            f"{t.params.get('style_ratio', math.nan):7.2g} {t.params.get('tv_ratio', math.nan):7.2g} "
            f"{t.params.get('style_scale', math.nan):5.2f}")
    lines.append("* = `tuner best` pick, c = chosen by a person, ! = infeasible (noise above the judge's limit); "
                 "scores: 0 ideal, 1 no better than doing nothing")
    return "\n".join(lines)


def _studies(args: argparse.Namespace) -> int:
    import optuna

    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        print(f"no studies in {args.storage} yet; run `tuner search --style PAINTING`")
        return 0
    print(f"{'study':<24} {'done':>5} {'stopped':>7} {'failed':>6} {'running':>7}  {'best (style, content)':<24} chosen")
    for summary in sorted(summaries, key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        c = state_counts(study.get_trials(deepcopy=False))
        try:
            n = chosen_or_default(study)
            t = trial_record(study, n)
            best = f"#{n} ({t.score('style'):.3f}, {t.score('content'):.3f})"
        except StorageError:
            best = "-"
        mine = "" if StudyRecord.from_user_attrs(study.user_attrs) else "  (not a tuner study)"
        chosen = chosen_trial(study.user_attrs)
        print(f"{summary.study_name:<24} {c['COMPLETE']:>5} {c['PRUNED']:>7} {c['FAIL']:>6} {c['RUNNING']:>7}  "
              f"{best:<24} {'#' + str(chosen) if chosen is not None else '-'}{mine}")
    return 0


def _show(args: argparse.Namespace) -> int:
    study = _load(args, args.study)
    rec = read_record(study)
    print(f"study {study.study_name}: painting {rec.painting_label} "
          f"({rec.style_sha256[:12]}), photos {', '.join(rec.content_names)} at {rec.proxy_size} px"
          f"{f' (painted at {rec.paint_side} px)' if rec.paint_side else ''}, "
          f"{rec.steps} steps, judge {rec.judge.get('name')} v{rec.judge.get('version')}"
          f"{f' at {rec.judge_side} px' if rec.judges_view else ''}")
    baseline = _baseline_lines(study, rec, args)  # first: the default pick (*) prefers trials that beat it
    print(_front_table(study, limit=args.limit, include_all=args.all))
    print("\n".join(baseline))
    return 0


def _baseline_lines(study, rec: StudyRecord, args: argparse.Namespace) -> list[str]:
    """The off-the-shelf model's scores and how many trials beat it (computed on first view); when none does,
    a second line naming ``tuner preview`` (:func:`tuner.records.losing_note`)."""
    from tuner.baseline import BaselineUnavailable, ensure_baseline
    from tuner.records import beaten_on, beating_trials, losing_note, read_baseline

    label = "off-the-shelf baseline (Magenta arbitrary network, no training)"
    if args.no_baseline:
        base = read_baseline(study.user_attrs)
        if base is None:
            return [f"{label}: not computed yet (run `tuner show {study.study_name}` without --no-baseline)"]
    else:
        try:
            base = ensure_baseline(study, args.storage, args.artifacts)
        except BaselineUnavailable as exc:
            return [f"{label}: unavailable ({exc})"]
    s = base.scores
    trials = [t for t in finished_trials(study) if t.feasible]
    beat = beating_trials(base, trials, rec.tradeoff)
    verdict = (f"{len(beat)} of {len(trials)} feasible trial(s) beat it {beaten_on(rec.tradeoff)}"
               + (f" (best: #{beat[0].number})" if beat else ""))
    noisy = "" if base.feasible else " (too noisy for the judge)"
    note = losing_note(base, trials, rec.tradeoff)
    return [f"{label}: style {s['style']:.3f}, content {s['content']:.3f}, noise {s['noise']:.2f}{noisy}; {verdict}",
            *([note] if note else [])]


def _best_payload(study, number: int, tradeoff: float | None = None) -> dict[str, Any]:
    """``beats_baseline``: whether the trial beats the stored off-the-shelf baseline; None when there is none."""
    from tuner.baseline import read_baseline

    t = trial_record(study, number)
    chosen = chosen_trial(study.user_attrs)
    base = read_baseline(study.user_attrs)
    return {"study": study.study_name, "trial": number, "chosen": chosen == number,
            "rule": "chosen by a person" if chosen is not None else DEFAULT_RULE,
            "scores": t.scores, "feasible": t.feasible,
            "beats_baseline": base.beaten_by(t.scores, tradeoff) if base is not None else None,
            "artifacts": t.artifacts, "style_config": t.style_config}


def _best(args: argparse.Namespace) -> int:
    from tuner.reader import trial_config

    study = _load(args, args.study)
    rec = read_record(study)
    finished = finished_trials(study)
    if chosen_trial(study.user_attrs) is None and finished and not any(t.feasible for t in finished):
        raise StorageError(
            f"every finished trial of {study.study_name!r} is too noisy for the judge (limit "
            f"{rec.judge.get('noise_limit')}); pick one with `tuner choose {study.study_name} TRIAL`")
    number = chosen_or_default(study)
    config = trial_config(study, number)
    payload = _best_payload(study, number, rec.tradeoff)
    note = baseline_note(study)
    if args.config:
        print(config.to_json())
        if note:
            print(note, file=sys.stderr)
    elif args.json:
        print(json.dumps(payload, indent=2))
    else:
        s = payload["scores"]
        print(f"{study.study_name}: trial {number} ({payload['rule']}): style {s.get('style', math.nan):.3f}, "
              f"content {s.get('content', math.nan):.3f}, noise {s.get('noise', math.nan):.2f}")
        if note:
            print(note)
        print(config.to_json())
    return 0


def _choose(args: argparse.Namespace) -> int:
    from tuner.reader import trial_config

    study = _load(args, args.study)
    read_record(study)
    if args.trial.lower() == "none":
        study.set_user_attr(CHOSEN_ATTR, None)
        print(f"{study.study_name}: choice cleared; `tuner best` uses the default rule again")
        return 0
    if not args.trial.isdigit():
        raise StorageError(f"{args.trial!r} is not a trial number; give e.g. 17 (see `tuner show {study.study_name}`)")
    number = int(args.trial)
    trial_config(study, number)  # must exist and have finished
    study.set_user_attr(CHOSEN_ATTR, number)
    note = "" if trial_record(study, number).feasible else " (note: the judge found it noisy)"
    print(f"{study.study_name}: trial {number} chosen{note}; `tuner best {study.study_name}` and "
          f"`trainer fit --from-study {study.study_name}` now use it")
    return 0


def add_parsers(sub) -> None:
    """Add the study subcommands (studies, show, best, choose) to ``tuner``'s subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter

    st = sub.add_parser("studies", help="list the studies in a storage", epilog=SHOW_EPILOG, formatter_class=fmt,
                        description="List studies with trial counts and the best (or chosen) trial.")
    add_storage_args(st)
    st.set_defaults(func=_studies)

    sh = sub.add_parser("show", help="a study's Pareto front (or top trials) as a table", epilog=SHOW_EPILOG,
                        formatter_class=fmt, description="Show a study's Pareto front or its best trials.")
    sh.add_argument("study", nargs="?", help="study name (default: the most recently active study)")
    sh.add_argument("--all", action="store_true", help="every finished trial, not only the front")
    sh.add_argument("--limit", type=int_in(1, 100000, "--limit"), default=20, help="rows to show (default 20)")
    sh.add_argument("--no-baseline", action="store_true",
                    help="do not compute the off-the-shelf baseline if the study has none yet (it takes a few seconds, once)")
    add_storage_args(sh)
    sh.set_defaults(func=_show)

    b = sub.add_parser("best", help="the chosen trial, or the default rule's pick", epilog=SHOW_EPILOG,
                       formatter_class=fmt,
                       description="Print the trial to train: the one a person chose, else the feasible trial with "
                                   "the smallest style + content, taken from the trials that beat the off-the-shelf "
                                   "baseline when some do. When none does, a line says so and names `tuner preview`.")
    b.add_argument("study", nargs="?", help="study name (default: the most recently active study)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="machine-readable: study, trial, scores, artifacts, style_config")
    g.add_argument("--config", action="store_true", help="print only the StyleConfig JSON (for tuner render --config)")
    add_storage_args(b)
    b.set_defaults(func=_best)

    c = sub.add_parser("choose", help="record which trial to train", epilog=SHOW_EPILOG, formatter_class=fmt,
                       description="Record a person's pick; `tuner best` and `trainer fit --from-study STUDY` then use it.")
    c.add_argument("study", help="study name")
    c.add_argument("trial", help="trial number (see `tuner show`), or 'none' to clear the choice")
    add_storage_args(c)
    c.set_defaults(func=_choose)
