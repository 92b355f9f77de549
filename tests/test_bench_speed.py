"""Smoke tests of the speed benches (``bench/gatys_speed.py``, ``bench/inference_speed.py``,
``bench/train_throughput.py``): each runs its main on tiny inputs and prints the table its
section of docs/benchmarks.md quotes. The timings themselves mean nothing at this size.
"""

from __future__ import annotations

import pytest


def _table_rows(out: str, first_cell: str) -> list[list[str]]:
    """The Markdown table rows of ``out`` whose first cell is ``first_cell``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ")]
    return [r for r in rows if r[0] == first_cell]


def test_gatys_speed_times_ours_against_the_tutorial_in_turns(tmp_path, capsys):
    from bench.gatys_speed import main

    image = tmp_path / "sheet_{size}.png"
    assert main(["--network", "tiny", "--pooling", "avg", "--size", "32", "--reference-steps", "4",
                 "--max-steps", "4", "--rounds", "1", "--interleave", "--image", str(image)]) == 0
    out = capsys.readouterr().out
    (reference, *_), (ours, *_) = _table_rows(out, "reference: tutorial Adam"), _table_rows(out, "ours: L-BFGS")
    assert reference[3] == "1.00x" and ours[3].endswith("x")  # speed-up against the reference
    assert "equal-load view" in out and "load-independent view" in out
    assert "| matmul 2048x2048 float32" in out and "| loss+gradient, tf.function + XLA" in out
    assert (tmp_path / "sheet_32.png").is_file()


def test_inference_speed_times_johnson_against_fast_through_tensorflow_and_tflite(capsys):
    from bench.inference_speed import main

    assert main(["--size", "64", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    (johnson,), (fast,) = _table_rows(out, "johnson"), _table_rows(out, "fast")
    assert johnson[3] == "1" and johnson[6] == "1"  # the reference's own speed-ups
    assert float(fast[3]) > 0 and float(fast[6]) > 0
    assert "matmul 2048x2048 in the same rounds" in out


@pytest.mark.weights
@pytest.mark.slow  # two traced training steps of vgg16_hed: about 20 s on an idle 2-core machine, more under load
def test_train_throughput_counts_and_times_a_training_step(capsys):
    from bench.train_throughput import main

    assert main(["--size", "32", "--batch", "1", "--rounds", "1", "--networks", "fast"]) == 0
    out = capsys.readouterr().out
    assert _table_rows(out, "fast") and _table_rows(out, "fast + cached content")
    assert "| total (no cache)" in out and "matmul 2048x2048" in out
    assert "WARNING" not in out  # the counted convolution and Gram ops are the ones TensorFlow runs
