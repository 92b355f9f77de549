"""Smoke tests of the quick benchmarks (``make bench``): each runs once, briefly, and prints its table.

The measurements themselves are in docs/benchmarks.md; these only check that each bench
still runs end to end on today's code and prints the rows its section quotes.
"""

from __future__ import annotations


def test_cli_startup_times_every_command_against_the_floor_and_tensorflow(capsys):
    from bench.cli_startup import COMMANDS, main

    assert main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "median s" in out[0] and "/ import tf" in out[0]
    for name in COMMANDS:
        row = next(line for line in out[1:] if line.startswith(name))
        seconds, floor_ratio, tf_ratio = (float(v) for v in row[len(name):].split())
        assert seconds > 0 and floor_ratio > 0 and tf_ratio > 0
    assert any(line.startswith("import tensorflow (reference)") and line.rstrip().endswith("1.00") for line in out)


def test_dashboard_refresh_prints_both_refreshes_with_their_speed_up(capsys):
    from bench.dashboard_refresh import main

    assert main(["--trials", "6", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "study with 9 trials, median of 1 interleaved rounds" in out
    for label in ("studies list (studies_frame)", "study table (study_frame)"):
        row = next(line for line in out.splitlines() if label in line)
        assert row.rstrip(" |").endswith("x")
