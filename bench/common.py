"""Small helpers shared by the benchmarks in ``bench/``.

Every benchmark prints our figure beside a reference measured in the same process, so
machine load hits both alike and the ratio stays meaningful on a shared machine. These
helpers give the pieces every such script needs:

* :func:`median_seconds` - median wall time of a callable (medians shrug off the odd
  slow repeat that a busy machine produces; means do not);
* :func:`interleaved_medians` - medians of several callables timed in alternation, so
  a shared machine's drifting load hits them all alike;
* :func:`matmul_gflops` / :func:`matmul_probe` - the machine's measured float32
  matrix-multiply rate, the practical ceiling for convolution-heavy work on a CPU;
* :func:`conv_flops` - forward FLOPs of every ``Conv2D`` of a Keras model at a given
  input size, from the layer shapes;
* :func:`format_table` - a Markdown table, so the printed output pastes straight into
  ``docs/benchmarks.md``;
* :func:`machine_summary` - one line saying what the numbers were measured on;
* :func:`trial_numbers` - an argparse type for ``12,16``, the trials a bench should take,
  and :func:`require_trials`, the one-line error when the study lacks some of them.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def median_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls.

    ``fn`` must block until its work is done (e.g. end with ``.numpy()`` on a tensor).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], Any]], rounds: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each blocking callable, timed in interleaved rounds.

    Each round calls every function once, in an order rotated from round to round. When
    other jobs share the machine their load drifts over minutes; interleaving puts every
    function through the same drift, so ratios between the medians stay fair.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_probe(n: int = 2048) -> tuple[Callable[[], Any], float]:
    """``(run, flops)``: ``run()`` multiplies two fixed ``n x n`` float32 matrices and blocks.

    Split out from :func:`matmul_gflops` so a benchmark can interleave single probes with
    its own timings and read both rates from the same moments of a shared machine.
    """
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=tf.float32)
    b = tf.random.stateless_normal((n, n), seed=(3, 4), dtype=tf.float32)

    @tf.function
    def product() -> tf.Tensor:
        # Reducing to a scalar forces the work without copying the n x n result out.
        return tf.reduce_sum(tf.linalg.matmul(a, b))

    return (lambda: product().numpy()), 2.0 * n**3


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Measured float32 matrix-multiply rate in GFLOP/s (median of ``repeats``).

    An ``n x n`` by ``n x n`` product costs ``2 n^3`` floating-point operations. TensorFlow
    runs it on its own thread pool over all cores, like the benchmarked models, so this is
    the rate a well-fed convolution could at best reach on this machine right now.
    """
    run, flops = matmul_probe(n)
    return flops / median_seconds(run, repeats=repeats, warmup=2) / 1e9


def conv_flops(model: Any, height: int, width: int, channels: int = 3) -> list[tuple[str, float]]:
    """Forward FLOPs of each ``Conv2D`` layer of a Keras model (:func:`trainer.costs.model_conv_flops`)."""
    from trainer.costs import model_conv_flops

    return model_conv_flops(model, height, width, channels)


def add_test_photo_args(ap: Any, style: str) -> None:
    """``--style`` (default ``style``), ``--photos`` and ``--size``: a painting and test photos as ``tuner search``'s defaults take them."""
    ap.add_argument("--style", default=style)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--size", type=int, default=128)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown pipe table with aligned columns (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "| " + " | ".join(parts) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def machine_summary() -> str:
    """CPU model, core count, load average and TensorFlow version, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load n/a"
    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # pragma: no cover - every benchmark here needs TensorFlow
        tf_version = "absent"
    return f"{cpu}, {os.cpu_count()} cores, {load}, TensorFlow {tf_version}"


def trial_numbers(text: str) -> tuple[int, ...]:
    """``"12,16"`` -> ``(12, 16)``; an argparse ``type`` that turns anything else into one usage error."""
    import argparse

    try:
        return tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give trial numbers separated by commas, e.g. 12,16") from None


def require_trials(wanted: Sequence[int], completed: Sequence[int], *, prog: str, flag: str, study: str) -> None:
    """Stop with one line naming the ``wanted`` trials that are not among ``completed``, and listing those."""
    missing = [n for n in wanted if n not in set(completed)]
    if missing:
        raise SystemExit(f"{prog}: error: {flag} {','.join(map(str, missing))}: not a completed trial of study "
                         f"{study!r} (completed: {', '.join(map(str, sorted(completed)))})")
