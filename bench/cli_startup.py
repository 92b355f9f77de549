"""Start-up time of the command-line tools, beside references measured in the same run.

Usage::

    python bench/cli_startup.py             # 7 rounds, interleaved
    python bench/cli_startup.py --rounds 15

Each round runs every command once, in turn, so a change in machine load hits all of them
alike. Prints the median wall time of each, and its ratio to a bare ``python -c pass`` and
to ``python -c "import tensorflow"`` (what ``--help`` used to cost when it loaded it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _command(tool: str, *args: str) -> list[str]:
    exe = BIN / tool
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", f"{tool}.cli", *args]


COMMANDS: dict[str, list[str]] = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "tuner --help": _command("tuner", "--help"),
    "tuner search --help": _command("tuner", "search", "--help"),
    "trainer --help": _command("trainer", "--help"),
    "trainer fit --help": _command("trainer", "fit", "--help"),
    "import tensorflow (reference)": [sys.executable, "-c", "import nst, tensorflow"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["python -c pass (floor)"])
    tf = statistics.median(times["import tensorflow (reference)"])
    print(f"{'command':32} {'median s':>9} {'x floor':>8} {'/ import tf':>11}   (load {os.getloadavg()[0]:.1f}, "
          f"{args.rounds} rounds)")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:32} {med:9.2f} {med / floor:8.1f} {med / tf:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
