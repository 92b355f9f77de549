"""The Keras callbacks ``trainer fit`` trains with (:meth:`trainer.fit.Trainer.train`).

``fit`` calls them in list order after every step, with one shared ``logs`` dict:
:class:`StepClock` adds the step number and its duration, :class:`StopOnNonFinite` ends
a diverged run, then the metrics log, the progress bar, checkpoints, previews and the
stop-signal check read what the earlier ones added. The step number is the optimiser's
own ``iterations`` counter, which a checkpoint restores, so it always matches the weights.

Where Keras ships a near relative, the class says in one line why it is not used as is.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:  # for annotations only: trainer.fit imports this module
    from trainer.runs import RunFolder


class StepClock(keras.callbacks.Callback):
    """Adds ``step``, ``seconds`` and ``img_per_s`` (and a smoothed ``img_per_s_avg``) to each step's logs."""

    def __init__(self, batch: int):
        super().__init__()
        self.batch = batch
        self.rate: float | None = None
        self._started = 0.0
        self._first = True

    def on_train_batch_begin(self, batch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self._started
        step = int(self.model.optimizer.iterations.numpy())
        img_s = self.batch / max(seconds, 1e-9)
        # The first steps include tracing; restart the average after them.
        self.rate = img_s if self.rate is None or batch < 2 else 0.9 * self.rate + 0.1 * img_s
        logs.update(step=step, seconds=seconds, img_per_s=img_s, img_per_s_avg=self.rate)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop with a one-line error when the loss, a term or a weight is NaN or infinite.

    Not ``keras.callbacks.TerminateOnNaN``: that one watches ``loss`` only and ends
    ``fit`` quietly, while a run must also catch an overflowing update, never checkpoint
    the broken weights, and tell the user what to change.
    """

    def __init__(self, trainer: Any):
        super().__init__()
        self.trainer = trainer

    def on_train_batch_end(self, batch, logs=None):
        from nst.errors import TrainingDiverged

        broken = logs.pop("nonfinite_weights") > 0
        bad = [k for k, v in logs.items() if isinstance(v, float) and not math.isfinite(v)]
        if broken or bad:
            self.trainer.diverged = True
            what = "the weights" if broken else bad[0]
            raise TrainingDiverged(
                f"{what} became NaN or infinite at step {logs['step']}; the newest checkpoint (step "
                f"{self.trainer.last_saved}) is intact; lower --lr or the StyleConfig's weights and resume")


class MetricsLog(keras.callbacks.Callback):
    """One JSON line per step in the run's ``metrics.jsonl``, written in groups of ``every`` lines.

    Not ``keras.callbacks.CSVLogger``: it writes once per epoch, and a run is one epoch.
    """

    def __init__(self, run: RunFolder, every: int = 20):
        super().__init__()
        self.run = run
        self.every = every
        self.pending: list[dict[str, Any]] = []

    def on_train_batch_end(self, batch, logs=None):
        terms = {k: round(v, 6) for k, v in logs.items()
                 if k not in ("step", "loss", "seconds", "img_per_s", "img_per_s_avg")}
        self.pending.append({"step": logs["step"], "loss": round(logs["loss"], 6), **terms,
                             "img_per_s": round(logs["img_per_s"], 3),
                             "seconds": round(logs["seconds"], 4), "time": round(time.time(), 3)})
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        self.run.append_metrics(rows)

    def on_train_end(self, logs=None):
        self.flush()


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar over the run's steps (with ETA), on stderr.

    Not Keras' ``ProgbarLogger``: it prints to stdout, where the command's result line
    goes, and counts an epoch from 0 instead of the run from the step it resumed at.
    """

    def __init__(self, name: str, start: int, until: int, enabled: bool = True):
        super().__init__()
        self.name, self.start, self.until, self.enabled = name, start, until, enabled
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.until, initial=self.start, desc=f"train {self.name}", unit="step",
                        disable=not self.enabled, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{logs['loss']:.4g}", content=f"{logs['content']:.3g}", style=f"{logs['style']:.3g}",
                             tv=f"{logs['tv']:.3g}", img_s=f"{logs['img_per_s_avg']:.2f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, logs=None):
        self.close()


class Checkpoints(keras.callbacks.Callback):
    """A checkpoint every ``every`` steps and at the end of ``fit`` (also after a stop signal).

    The metrics are flushed first, so the log never ends before the newest checkpoint.
    Not ``keras.callbacks.ModelCheckpoint``/``BackupAndRestore``: the run folder's
    checkpoints are ``.npz`` arrays that ``trainer stylize``/``export`` and resumes read
    without pickle, pruned to ``keep_checkpoints`` (:meth:`trainer.runs.RunFolder.save_checkpoint`).
    """

    def __init__(self, trainer: Any, every: int, metrics: MetricsLog):
        super().__init__()
        self.trainer, self.every, self.metrics = trainer, every, metrics

    def on_train_batch_end(self, batch, logs=None):
        if logs["step"] % self.every == 0:
            self.metrics.flush()
            self.trainer.save()

    def on_train_end(self, logs=None):
        if self.trainer.step > self.trainer.last_saved:
            self.metrics.flush()
            self.trainer.save()


class Previews(keras.callbacks.Callback):
    """A preview contact sheet every ``every`` steps (:meth:`trainer.fit.Trainer.write_preview`)."""

    def __init__(self, trainer: Any, every: int):
        super().__init__()
        self.trainer, self.every = trainer, every

    def on_train_batch_end(self, batch, logs=None):
        if logs["step"] % self.every == 0:
            self.trainer.write_preview()


class StopOnSignal(keras.callbacks.Callback):
    """First Ctrl-C or SIGTERM: finish the step, end ``fit`` (which checkpoints), then stop; a second stops at once.

    Keras has no callback for signals. The handlers are installed only while ``fit``
    runs, and only from the main thread (Python allows no other).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.requested = False
        self._old: dict[int, Any] = {}

    def on_train_begin(self, logs=None):
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        for sig in self.SIGNALS:
            self._old[sig] = signal.signal(sig, handler)

    def on_train_batch_end(self, batch, logs=None):
        if self.requested:
            self.model.stop_training = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def on_train_end(self, logs=None):
        self.restore()
