"""Chaos run: SIGKILL ``tuner search`` and ``trainer fit`` at random moments, rerun, prove nothing is lost.

Searches run overnight and training runs for hours, so sooner or later one is killed
by an out-of-memory killer, a reboot or a closed laptop lid. SIGKILL cannot be caught:
whatever the process was doing (an L-BFGS step, a PNG half written, a SQLite commit)
simply stops. The promise of ``tuner search`` and ``trainer fit`` is that running the
same command again continues as if nothing happened. This script tests that promise
the blunt way: it runs each command in a subprocess, kills it at a random moment, runs
the same command again, and repeats; then it checks what a user would check.

Where the kills land. Pure random delays mostly hit the long phases (Python start-up,
optimising), so the script mixes kill triggers, in turn:

* ``create``: shortly after the study database / run folder appears (creating it);
* ``trial`` / ``steps``: a random time into a trial / into training;
* ``artifact`` / ``checkpoint`` / ``preview``: the moment a new file (or its temporary
  name) appears in the artifact, checkpoint or preview folder, i.e. mid-write or
  between the write and the commit that records it;
* ``commit``: at the k-th change of SQLite's write-ahead log (k random), i.e. just
  after, or in the middle of, a database commit;
* ``random``: anywhere between start-up and two trials in.

After every kill the phase it landed in is read back from the storage, and every file
under its real name is opened (PNG decoded, ``.npz`` arrays loaded, JSON parsed,
``.keras`` zip verified): writes go to a temporary name and are renamed, so none may be
truncated. At the end, for ``tuner search`` (no early stopping, so every finished trial
is COMPLETE): exactly ``--trials`` COMPLETE trials, none RUNNING or WAITING, no two
finished trials with the same parameters, each published recipe finished exactly once,
every killed trial re-run exactly once with its parameters (a trial whose worker died
``MAX_RETRY + 1`` times in a row stays failed by design: that is how a trial that itself
kills its worker is stopped; the table counts these apart), every finished trial's
images readable through :mod:`tuner.reader`, and SQLite's ``PRAGMA integrity_check``
is ``ok``. For ``trainer fit``: every rerun resumes from the newest checkpoint on disk
(never an older one), the metrics hold each step exactly once (1..steps, no gaps), and
the final checkpoint and ``model.keras`` load and stylise a photo.

The networks are the ``tiny`` random ones at 32 px, so a kill-and-rerun cycle costs
mostly Python and TensorFlow start-up (about 8-12 s on 2 cores); the mechanics under
test are the same as with VGG at 256 px. The search renders its trials with
``--proxy gatys`` unless ``--proxy network`` (the search's own default) is asked for.

Usage::

    python -m bench.chaos                              # 10 kills of each command; about 5 min on 2 cores
    python -m bench.chaos --kills 20 --seed 7          # more kills, another random schedule
    python -m bench.chaos --only tuner --kills 3 --keep /tmp/chaos   # keep the folders to look at
    python -m bench.chaos --only tuner --proxy network   # kill searches that render with the network proxy
    python -m bench.chaos --json chaos.json            # the reports as JSON as well

Exit status 0 when every check passed, 1 when any failed (each failure is printed).

The run against each command is in :mod:`bench.chaos_tuner` and :mod:`bench.chaos_trainer`,
the pieces they share (report, child processes, kill triggers, file checks) in
:mod:`bench.chaos_common`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.chaos_common import Report
from bench.chaos_trainer import run_trainer
from bench.chaos_tuner import run_tuner
from nst.config import PROXY_KINDS


def table(reports: list[Report]) -> str:
    from bench.common import format_table

    rows = []
    for r in reports:
        tuner = r.command.startswith("tuner")
        rows.append([r.command, r.kills, r.runs, r.reruns, r.lost, r.duplicated, r.given_up if tuner else "-",
                     "-" if tuner else r.redone, r.files_checked, r.stray_tmp, r.integrity, round(r.seconds),
                     "PASS" if r.ok else "FAIL"])
    return format_table(["command", "kills", "runs", "re-run / resumed", "lost", "duplicated", "retry limit hit",
                         "steps redone", "files checked", "stray tmp", "integrity", "seconds", "result"], rows)


def phase_table(reports: list[Report]) -> str:
    from bench.common import format_table

    rows = [[r.command, phase, n] for r in reports for phase, n in sorted(r.phases.items(), key=lambda kv: -kv[1])]
    return format_table(["command", "where the kill landed", "kills"], rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs per command (default 10)")
    p.add_argument("--tuner-kills", type=int, help="override --kills for tuner search")
    p.add_argument("--trainer-kills", type=int, help="override --kills for trainer fit")
    p.add_argument("--only", choices=("tuner", "trainer"), help="run one command only")
    p.add_argument("--trials", type=int, help="study target (default kills + 4)")
    p.add_argument("--steps", type=int, default=8,
                   help="proxy steps per trial: L-BFGS steps of gatys, Adam steps of network (default 8)")
    p.add_argument("--proxy", choices=PROXY_KINDS, default="gatys",
                   help="tuner search --proxy: gatys (pixel optimisation; default here, the cheaper at 32 px) "
                        "or network (the search's own default, Magenta's transformer)")
    p.add_argument("--train-steps", type=int, help="training steps (default max(300, 120 x kills))")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill schedule (default 0)")
    p.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder, removed)")
    p.add_argument("--json", help="also write the reports to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    import shutil

    args = build_parser().parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="styletune-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    reports = []
    try:
        if args.only in (None, "tuner"):
            n = args.tuner_kills if args.tuner_kills is not None else args.kills
            print(f"tuner search: {n} kills (study in {work / 'tuner'})", flush=True)
            reports.append(run_tuner(work / "tuner", n, seed=args.seed, trials=args.trials, steps=args.steps,
                                     proxy=args.proxy))
        if args.only in (None, "trainer"):
            n = args.trainer_kills if args.trainer_kills is not None else args.kills
            print(f"trainer fit: {n} kills (run in {work / 'trainer'})", flush=True)
            reports.append(run_trainer(work / "trainer", n, seed=args.seed, steps=args.train_steps,
                                       every=args.checkpoint_every))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(reports))
    print()
    print(phase_table(reports))
    for r in reports:
        for c in r.failures:
            print(f"FAIL {r.command}: {c.what}" + (f" ({c.detail})" if c.detail else ""))
        print(f"{r.command}: {len(r.checks)} checks, {len(r.failures)} failed")
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
