"""How much one dashboard refresh costs, with and without Optuna's trial cache.

The dashboard re-reads the storage every few seconds while a page is open (the live
studies list, the "new trials" line of a study). ``optuna.load_study`` on a plain
``RDBStorage`` re-reads every trial each time; the dashboard keeps one Optuna cached
storage instead (``dashboard.data.reading_storage``), which keeps finished trials in
memory and re-reads only unfinished and new ones. This measures both on the same study,
interleaved, and prints the ratio.

    python -m bench.dashboard_refresh                 # 150 finished trials
    python -m bench.dashboard_refresh --trials 400

The study is built with tuner/testing.py (the storage contract, images blended,
no network run), in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.common import format_table, interleaved_medians, machine_summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=150, help="finished trials in the study (default 150)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    args = p.parse_args(argv)

    from dashboard import data
    from tuner.reader import load_study, open_storage
    from tuner.testing import make_study

    folder = tempfile.mkdtemp(prefix="bench-dashboard-")
    url = make_study(f"sqlite:///{folder}/studies.db", n_complete=args.trials, n_pruned=args.trials // 10,
                     n_fail=2, n_running=1, progress=True)
    raw, cached = open_storage(url), data.reading_storage(url)

    def overview(storage):
        return lambda: data.studies_frame(storage)

    def study_page(storage):
        return lambda: data.study_frame(load_study(storage, "fixture"))

    med = interleaved_medians({
        "overview raw": overview(raw), "overview cached": overview(cached),
        "study raw": study_page(raw), "study cached": study_page(cached),
    }, rounds=args.rounds)
    total = args.trials + args.trials // 10 + 3
    rows = []
    for what, label in (("overview", "studies list (studies_frame)"), ("study", "study table (study_frame)")):
        ours, ref = med[f"{what} cached"], med[f"{what} raw"]
        rows.append([label, f"{ours * 1000:.0f}", f"{ref * 1000:.0f}", f"{ref / ours:.1f}x"])
    print(machine_summary())
    print(f"study with {total} trials, median of {args.rounds} interleaved rounds\n")
    print(format_table(["refresh", "cached storage (ms)", "plain RDBStorage (ms)", "speed-up"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
