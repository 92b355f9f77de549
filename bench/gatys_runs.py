"""The two runs ``bench/gatys_speed.py`` times: the TensorFlow tutorial's Adam recipe and ours.

:class:`Run` is one optimiser's clock and loss per iteration; :class:`Turns` lets the two
take one step each in turn in two threads; :func:`tutorial_reference` is the tutorial's
recipe written out independently of ``nst.gatys``; :func:`ours` is ``nst.gatys.stylize``
with a timing callback; :func:`default_early_stop` replays ``stylize``'s early-stop rule on
a recorded loss history. ``bench/gatys_speed.py``'s docstring says how they are compared.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Run:
    """One optimiser run: the clock and loss at the end of every iteration, and its image."""

    name: str
    times: list[float] = field(default_factory=list)  # seconds since the run's start
    losses: list[float] = field(default_factory=list)
    image: object = None  # (H, W, 3) float32 in [0, 1]
    evaluations: int = 0
    final_loss: float = math.nan  # the shared evaluator on the final image
    note: str = ""

    @property
    def iterations(self) -> int:
        return len(self.times)

    @property
    def seconds(self) -> float:
        return self.times[-1] if self.times else math.nan

    def median_iteration(self) -> float:
        """Median seconds per iteration, leaving out the first (it includes tracing)."""
        steps = [b - a for a, b in zip(self.times[:-1], self.times[1:], strict=True)]
        return statistics.median(steps) if steps else math.nan

    def reached(self, target: float) -> tuple[int, float] | None:
        """(iteration, seconds) at which the loss first got to ``target`` or below."""
        for i, (t, loss) in enumerate(zip(self.times, self.losses, strict=True)):
            if loss <= target:
                return i + 1, t
        return None


class Turns:
    """Two optimisers that take one step each in turn, in two threads.

    A shared machine's load changes over minutes; run one optimiser after the other and
    the second may see several times the load of the first, which swamps the ratio. In
    turns, both see the same load at the same moment, and each run's clock counts only
    its own steps (the time it held the turn), so the ratio compares like with like.
    When one run ends, the other carries on alone.
    """

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition()
        self._turn = 0
        self._done = [False, False]

    def take(self, me: int) -> None:
        """Block until it is ``me``'s turn (or the other run has ended)."""
        with self._cond:
            self._cond.wait_for(lambda: self._turn == me or self._done[1 - me])

    def give(self, me: int, finished: bool = False) -> None:
        """End ``me``'s turn; ``finished`` says ``me`` takes no more turns."""
        with self._cond:
            self._done[me] = self._done[me] or finished
            self._turn = 1 - me
            self._cond.notify_all()


REF, OURS = 0, 1


# --------------------------------------------------------------------------- reference


def tutorial_reference(extractor, content, style_image, config, steps: int, loss_scale: float, progress,
                       turns: Turns | None = None) -> Run:
    """The TensorFlow tutorial's Adam recipe, written out plainly (see the module docstring).

    With ``turns``, each step waits for its turn and the clock counts only the steps.
    """
    import keras
    import tensorflow as tf

    from nst.losses import config_loss

    def gram_matrix(features):
        # The tutorial's Gram: channel products summed over positions, divided by their count.
        n = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], tf.float32)
        return tf.einsum("bijc,bijd->bcd", features, features) / n

    run = Run("reference: tutorial Adam")
    if turns:
        turns.take(REF)
    own = 0.0  # seconds this run held the machine
    start = time.perf_counter()
    style_outputs = extractor(tf.constant(style_image[None]))
    style_targets = {name: gram_matrix(style_outputs[name]) for name in config.active_style_layers}
    content_target = extractor(tf.constant(content[None]))[config.content_layer]

    image = tf.Variable(content[None])
    opt = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
    opt.build([image])

    @tf.function()
    def train_step(image):
        with tf.GradientTape() as tape:
            outputs = extractor(image)
            loss, _ = config_loss(outputs, image, content_target, style_targets, config)
            loss = tf.reduce_sum(loss)
            scaled = loss * loss_scale
        grad = tape.gradient(scaled, image)
        opt.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return loss

    try:
        for i in range(steps):
            if turns and i:
                turns.take(REF)
                start = time.perf_counter()
            loss = float(train_step(image))
            own += time.perf_counter() - start
            if turns:
                turns.give(REF)
            run.times.append(own)
            run.losses.append(loss)
            run.evaluations += 1
            progress(loss)
            if not math.isfinite(loss):
                run.note = f"loss became {loss}"
                break
    finally:
        if turns:
            turns.give(REF, finished=True)
    run.image = image.numpy()[0]
    return run


# --------------------------------------------------------------------------------- ours


def ours(content, style, config, target: float, max_steps: int, progress, label: str, stop_at_target: bool = True,
         turns: Turns | None = None, **kwargs) -> Run:
    """``nst.gatys.stylize`` with a callback noting (time, loss) and stopping at ``target``.

    With ``turns``, every iteration waits for its turn, the clock counts only the
    iterations, and the run goes on to ``max_steps`` (the target is not known yet).
    """
    from nst.gatys import stylize

    run = Run(label)
    clock = {"own": 0.0}
    if turns:
        turns.take(OURS)
    clock["start"] = time.perf_counter()

    def callback(step: int, loss: float, terms: dict[str, float]) -> bool:
        clock["own"] += time.perf_counter() - clock["start"]
        run.times.append(clock["own"])
        run.losses.append(loss)
        progress(loss)
        if turns:
            turns.give(OURS)
            turns.take(OURS)
        clock["start"] = time.perf_counter()
        return stop_at_target and loss <= target

    try:
        result = stylize(content[None], style, config, steps=max_steps, method="lbfgs", callback=callback, **kwargs)
    finally:
        if turns:
            turns.give(OURS, finished=True)
    run.image = result.images[0]
    run.evaluations = result.evaluations
    run.note = result.reason
    return run



def default_early_stop(losses: Sequence[float]) -> tuple[int | None, str]:
    """Where ``stylize``'s default early stop would end a run with this loss history.

    L-BFGS here is deterministic, so the run with early stopping off follows the same
    path as one with it on, up to the stop; replaying the rule on the recorded losses
    answers "does the default stop too soon?" without another run. The rule mirrors
    ``nst.gatys``: stop when the best loss improved by at most ``tol`` (relative) over the
    last ``patience`` iterations, not before ``min_steps``. Returns (iteration or None, rule).
    """
    import inspect

    from nst.gatys import stylize

    params = inspect.signature(stylize).parameters
    tol, patience, min_steps = (params[n].default for n in ("early_stop_tol", "patience", "min_steps"))
    rule = f"early_stop_tol={tol:g}, patience={patience}, min_steps={min_steps}"
    best: list[float] = []
    for step, loss in enumerate(losses, start=1):
        best.append(min(best[-1], loss) if best else loss)
        if tol > 0 and step >= max(min_steps, patience):
            old = best[-1 - patience]
            if old - best[-1] <= tol * abs(old):
                return step, rule
    return None, rule


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr and the ``progress(loss)`` callback the runs above report to."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", mininterval=2.0, dynamic_ncols=True, file=sys.stderr)

    def update(loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    return bar, update
