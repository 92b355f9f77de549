"""Train the feed-forward network with exactly the loss the study judged.

The loss is not re-implemented here: the features come from
:func:`nst.lossnets.get_extractor` with the StyleConfig's network, layers and pooling,
the style targets are :func:`nst.losses.gram` of the painting resized by
:func:`nst.gatys.style_size`, and every step is :func:`nst.training.train_step`, the step the
network proxy takes for every trial. The
Gatys proxy the tuner ran at 128 px calls the same functions, and because each term is a
per-element mean and the painting is scaled relative to the crop, the weights picked
there mean the same thing on 256 px training crops. With a ``scale_side`` the crops are
pieces of larger pictures (the network proxy's ``paint_side``), and the painting is
scaled relative to those pictures, as the proxy scales it to its photos.

Training follows Johnson et al. (2016): Adam at 1e-3, batches of 4 crops of 256 px,
40,000 steps (two epochs of COCO's 80k photos); on a CPU that is days, so ``--steps`` is
the knob to turn. More than one GPU: the step runs under a
``tf.distribute.MirroredStrategy`` (one replica per GPU, gradients summed across
replicas); otherwise the default strategy.

Everything a run needs is read back from its folder (:mod:`trainer.runs`), so a new run
and a resumed one take the same path: :func:`create_run` writes the folder, then
:class:`Trainer` loads it, continues from the newest checkpoint and trains: the step is
the ``train_step`` of a ``keras.Model`` (:mod:`trainer.loop`), run by ``model.fit`` with
callbacks for metrics, progress, checkpoints, previews, divergence and stop signals
(:mod:`trainer.callbacks`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from nst.config import StyleConfig
from nst.errors import ConfigError, TrainingDiverged
from nst.layers import freeze_all_but_norm
from trainer.runs import RunError, RunFolder, create_run
from trainer.scoring import judge_results, judged_at_view, score_results
from trainer.settings import DEFAULT_FEATURE_CACHE, TUNE_CHOICES, Settings

__all__ = ["DEFAULT_FEATURE_CACHE", "TUNE_CHOICES", "Settings", "Trainer", "TrainingDiverged", "choose_strategy",
           "create_run", "judge_results", "score_results"]


# -- the strategy ----------------------------------------------------------------------------------


def choose_strategy():
    """``MirroredStrategy`` over all GPUs when there are several, else the default (one device)."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


# -- training -------------------------------------------------------------------------------------


class Trainer:
    """A run folder brought to life: network, optimiser, loss, data, at the newest checkpoint.

    The step itself is :class:`trainer.loop.StyleTraining`'s ``train_step``; :meth:`train`
    hands it to ``model.fit`` with the callbacks of :mod:`trainer.callbacks`.
    """

    def __init__(self, run: RunFolder, *, strategy=None, progress: bool = True, data: str | None = None):
        import keras
        import tensorflow as tf

        from nst.gatys import style_size
        from nst.images import load_image, resize_longest
        from nst.losses import style_targets
        from nst.lossnets import FeatureExtractor, get_extractor
        from trainer.loop import StyleLoss, StyleTraining
        from trainer.nets import build_network

        self.run = run
        self.info = run.read_info()
        self.settings = Settings.from_dict(self.info.settings)
        self.config = StyleConfig.from_dict(self.info.style_config)
        self.progress = progress
        s = self.settings

        style_path = run.style_file()
        if hashlib.sha256(style_path.read_bytes()).hexdigest() != self.info.style_sha256:
            raise RunError(f"{style_path} does not match the hash in run.json; the painting was replaced")
        self.style = load_image(style_path)

        listing = json.loads((run.path / "data_files.json").read_text(encoding="utf-8"))
        self.files, self.needs_pillow = listing["files"], listing["needs_pillow"]
        if data and Path(data).resolve() != Path(listing["root"]).resolve():
            root = str(Path(listing["root"]))
            self.files = [str(Path(data) / Path(f).relative_to(root)) if f.startswith(root) else f for f in self.files]

        self.strategy = strategy or choose_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if s.batch % self.replicas:
            raise ConfigError(f"--batch {s.batch} does not split evenly over {self.replicas} devices; "
                              f"use a multiple of {self.replicas}")
        cfg = self.config
        default = not tf.distribute.has_strategy() and self.strategy is tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = build_network(s.arch, s.width, seed=s.seed, photo_skip=s.photo_skip)
            if s.tune == "norm":
                freeze_all_but_norm(self.model)
            self.optimizer = keras.optimizers.Adam(learning_rate=s.lr)
            self.optimizer.build(self.model.trainable_variables)
            if default:
                self.extractor = get_extractor(cfg.network, cfg.layers, cfg.pooling)
                self.content_extractor = get_extractor(cfg.network, [cfg.content_layer], cfg.pooling)
            else:  # variables must be created under the strategy to be mirrored
                self.extractor = FeatureExtractor(cfg.network, cfg.layers, cfg.pooling)
                self.content_extractor = FeatureExtractor(cfg.network, [cfg.content_layer], cfg.pooling)

            # The painting is scaled to the picture the crops are pieces of, as the proxy scales it to its photo.
            side = style_size((s.work_side, s.work_side), cfg.style_scale)
            style_img = tf.constant(resize_longest(self.style, side)[None])
            self.grams = style_targets(self.extractor(style_img), cfg.active_style_layers)
            self.training = StyleTraining(self.model, StyleLoss(self.extractor, self.content_extractor, self.grams, cfg),
                                          global_batch=s.batch)
            # XLA off: it changes the numbers (resumes must reproduce them) and compiles for minutes on a CPU.
            self.training.compile(optimizer=self.optimizer, jit_compile=False)

        self.last_saved = 0
        run.remove_leftovers()  # temporary files of a run that was killed mid-write
        if run.checkpoint_steps():
            self.restore()
        elif s.arch == "magenta":  # step 0: Magenta's pretrained transformer with this painting folded in
            from nst.transformer import painting_vector, pretrained_weights

            with self.strategy.scope():
                pretrained_weights(self.model, painting_vector(self.style))
        self.diverged = False
        self._stylizer: Any = None
        self.features: list[str] | None = None
        self.feature_shape: tuple[int, ...] | None = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Steps taken: the optimiser's own counter, which checkpoints save and restore with the weights."""
        return int(self.optimizer.iterations.numpy())

    def restore(self, step: int | None = None) -> int:
        saved, weights, opt_vars = self.run.load_checkpoint(step)
        if len(weights) != len(self.model.get_weights()) or len(opt_vars) != len(self.optimizer.variables):
            raise RunError(f"{self.run.path}: the checkpoint does not match this run's network; it was written by another version")
        with self.strategy.scope():
            self.model.set_weights(weights)
            self.optimizer.load_own_variables({str(i): v for i, v in enumerate(opt_vars)})
        if self.step != saved:
            raise RunError(f"{self.run.checkpoint_file(saved)}: its optimiser has taken {self.step} steps, not "
                           f"{saved}; delete it to fall back to an older checkpoint")
        self.last_saved = saved
        return saved

    def save(self) -> Path:
        if self.diverged:
            raise TrainingDiverged("refusing to checkpoint weights that are no longer finite")
        store: dict[str, np.ndarray] = {}
        self.optimizer.save_own_variables(store)
        opt_vars = [np.asarray(store[str(i)]) for i in range(len(store))]
        step = self.step
        path = self.run.save_checkpoint(step, self.model.get_weights(), opt_vars, keep=self.settings.keep_checkpoints)
        self.last_saved = step
        return path

    # -- the step --------------------------------------------------------------------------------
    def step_function(self):
        """One training step on one batch as a ``tf.function`` (what ``fit`` runs; for benchmarks)."""
        import tensorflow as tf

        training, strategy = self.training, self.strategy
        return tf.function(lambda batch: strategy.run(training.train_step, args=(batch,)))

    def measure_step_seconds(self, repeats: int = 1) -> float:
        """Seconds one step takes here (:meth:`trainer.loop.StyleTraining.seconds_per_step`), changing nothing.

        Used for the ETA printed before the first step and to fit the CPU recipe's steps
        into its time budget.
        """
        s = self.settings
        return self.training.seconds_per_step((s.batch // self.replicas, s.size, s.size, 3), s.seed, repeats)

    def set_steps(self, steps: int) -> None:
        """Change the run's total steps (recorded in ``run.json``, as ``trainer fit --steps`` on resume does)."""
        from dataclasses import replace

        self.settings = replace(self.settings, steps=int(steps))
        self.info = self.info.with_steps(steps)
        self.run.write_info(self.info)

    def loss_on(self, photos: np.ndarray) -> dict[str, float]:
        """The loss and its terms on a fixed batch, without training (for tests and reports)."""
        logs = self.training.test_on_batch(np.asarray(photos, np.float32), return_dict=True)
        return {k: float(v) for k, v in logs.items()}

    # -- data ------------------------------------------------------------------------------------
    def dataset(self):
        """The batches from the current step on; ``fit`` spreads them over the strategy's devices."""
        from trainer.data import training_dataset

        s = self.settings
        if s.precompute and self.features is None:
            from trainer.features import precompute

            self.features, self.feature_shape, _ = precompute(self.files, self.needs_pillow, self.config, s.size,
                                                              s.feature_cache, progress=self.progress,
                                                              scale_side=s.scale_side)
        return training_dataset(self.files, self.needs_pillow, size=s.size, batch=s.batch, seed=s.seed,
                                start_step=self.step, features=self.features, feature_shape=self.feature_shape,
                                scale_side=s.scale_side)

    # -- previews --------------------------------------------------------------------------------
    def preview_photos(self) -> dict[str, np.ndarray]:
        from nst.images import resize_longest

        return {name: resize_longest(img, self.settings.preview_side) for name, img in self.view_photos().items()}

    def stylise_photos(self) -> dict[str, np.ndarray]:
        stylizer = self.stylizer()
        return {name: stylizer(img) for name, img in self.preview_photos().items()}

    def stylizer(self):
        """The run's network as a painting function (one traced function, built once)."""
        from trainer.stylize import Stylizer

        s = self.settings
        if self._stylizer is None:  # one traced function, reading the live weights at every preview
            self._stylizer = Stylizer(self.model, s.arch, s.width, photo_skip=s.photo_skip, memory_mb=4096)
        return self._stylizer

    def write_preview(self) -> Path | None:
        from nst.images import contact_sheet, save_image

        photos = self.preview_photos()
        if not photos:
            return None
        results = self.stylise_photos()
        sheet = contact_sheet([list(photos.values()), [results[n] for n in photos]], cell=min(256, self.settings.preview_side))
        return save_image(self.run.previews / f"step_{self.step:06d}.png", sheet)

    # -- the loop --------------------------------------------------------------------------------
    def train(self, until: int | None = None) -> int:
        """Train up to step ``until`` (default: the settings' steps) with ``model.fit``.

        Ctrl-C or SIGTERM ends the step, checkpoints and raises ``KeyboardInterrupt``; a
        NaN or infinity raises :class:`TrainingDiverged`, keeping the newest checkpoint.
        """
        from trainer import callbacks as cb

        s = self.settings
        until = s.steps if until is None else until
        if self.step >= until:
            return self.step
        self.run.truncate_metrics(self.step)
        self.last_saved = self.step
        metrics = cb.MetricsLog(self.run)
        bar = cb.ProgressBar(self.run.name, self.step, until, enabled=self.progress)
        stop = cb.StopOnSignal()
        callbacks = [cb.StepClock(s.batch), cb.StopOnNonFinite(self), metrics, bar,
                     cb.Checkpoints(self, s.checkpoint_every, metrics), cb.Previews(self, s.preview_every), stop]
        try:
            self.training.fit(self.dataset(), epochs=1, steps_per_epoch=until - self.step, verbose=0, shuffle=False,
                              callbacks=callbacks)
        except KeyboardInterrupt:  # a second signal: stop at once, but keep what the finished steps did
            metrics.flush()
            if self.step > self.last_saved and not self.diverged:
                self.save()
            raise
        finally:
            stop.restore()
            metrics.flush()
            bar.close()
        if stop.requested:
            raise KeyboardInterrupt
        return self.step

    # -- after training --------------------------------------------------------------------------
    def export_keras(self) -> Path:
        """``model.keras`` (architecture + weights), written to a temporary name and renamed."""
        from nst.files import atomic_path

        with atomic_path(self.run.model_file, suffix=".keras") as tmp:
            self.model.save(tmp)
        return self.run.model_file

    def finish(self) -> dict[str, Any]:
        """Final previews, results, ``model.keras`` and the judge's scores (when a judge is available)."""
        from nst.images import save_image

        if not (self.run.previews / f"step_{self.step:06d}.png").exists():
            self.write_preview()
        photos = self.view_photos() if self.judged_at_view else self.preview_photos()
        results = self.paint_view(photos) if self.judged_at_view else self.stylise_photos()
        for name, img in results.items():
            save_image(self.run.results / f"{name}.png", img)
        self.export_keras()
        return score_results(self.run, self.info, photos, results, self.style, self.step)

    @property
    def judged_at_view(self) -> bool:
        """Whether the source study scored its trials on their view-size pictures (then so is this run)."""
        return judged_at_view(self.info)

    def view_photos(self) -> dict[str, np.ndarray]:
        """The run's test photos at the size they were stored: a study's view photos."""
        from nst.images import load_image

        return {p.stem: load_image(p) for p in sorted(self.run.photos.glob("*.png"))}

    def paint_view(self, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``photos`` painted as ``trainer stylize`` paints them: at the run's work side, enlarged with detail."""
        from nst.viewsize import paint_at_scale
        from trainer.settings import work_side_of

        stylizer, work = self.stylizer(), work_side_of(vars(self.settings))
        return {name: paint_at_scale(stylizer, img, work) for name, img in photos.items()}
