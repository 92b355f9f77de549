"""Train the feed-forward network with exactly the loss the study judged.

The loss is not re-implemented here: the features come from
:func:`nst.lossnets.get_extractor` with the StyleConfig's network, layers and pooling,
the style targets are :func:`nst.losses.gram` of the painting resized by
:func:`nst.gatys.style_size`, and every step calls :func:`nst.losses.config_loss`. The
Gatys proxy the tuner ran at 128 px calls the same functions, and because each term is a
per-element mean and the painting is scaled relative to the crop, the weights picked
there mean the same thing on 256 px training crops.

Training follows Johnson et al. (2016): Adam at 1e-3, batches of 4 crops of 256 px,
40,000 steps (two epochs of COCO's 80k photos); on a CPU that is days, so ``--steps`` is
the knob to turn. More than one GPU: the step runs under a
``tf.distribute.MirroredStrategy`` (one replica per GPU, gradients summed across
replicas); otherwise the default strategy.

Everything a run needs is read back from its folder (:mod:`trainer.runs`), so a new run
and a resumed one take the same path: :func:`create_run` writes the folder, then
:class:`Trainer` loads it, continues from the newest checkpoint and trains.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from nst.config import StyleConfig
from nst.errors import ConfigError, StyletuneError
from trainer.runs import RUN_VERSION, RunError, RunFolder, write_atomic, write_json

DEFAULT_FEATURE_CACHE = "studies/cache/content-features"
#: What fine-tuning may change: every weight, or only the instance-norm scales and shifts.
TUNE_CHOICES = ("all", "norm")


class TrainingDiverged(StyletuneError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class Settings:
    """How to train (everything except the loss, which is the StyleConfig)."""

    data: str
    arch: str = "johnson"
    width: float = 1.0
    size: int = 256
    batch: int = 4
    steps: int = 40_000
    lr: float = 1e-3
    seed: int = 0
    preview_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    preview_size: int = 0  # 0: the training size
    photo_skip: bool = False
    precompute: bool = False
    feature_cache: str = DEFAULT_FEATURE_CACHE
    recipe: str = ""  # the trainer.recipe name the settings came from ("" before recipes existed)
    tune: str = "all"  # "all" weights, or "norm": only the normalisation layers' scale and shift

    def __post_init__(self) -> None:
        from trainer.nets import check_arch, size_factor

        check_arch(self.arch)
        if self.size % size_factor("fast") or not 32 <= self.size <= 2048:
            raise ConfigError(f"--size must be a multiple of 8 between 32 and 2048, not {self.size}; 256 is the paper's")
        if not (0.01 <= self.width <= 8):
            raise ConfigError(f"--width must be between 0.01 and 8, not {self.width:g}")
        if self.arch == "magenta" and self.width != 1:
            raise ConfigError(f"--network magenta (the cpu and gpu recipes' network) starts from pretrained weights of "
                              f"width 1; drop --width {self.width:g}, or choose --network johnson or fast")
        if self.tune not in TUNE_CHOICES:
            raise ConfigError(f"--tune must be one of {', '.join(TUNE_CHOICES)}, not {self.tune!r}")
        if self.arch == "magenta" and self.photo_skip:
            raise ConfigError("--network magenta starts from Magenta's own result; drop --photo-skip")
        if not (0 < self.lr < 1):
            raise ConfigError(f"--lr must be between 0 and 1, not {self.lr:g}")
        for name in ("batch", "steps", "preview_every", "checkpoint_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @property
    def preview_side(self) -> int:
        return self.preview_size or self.size

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# -- creating a run ------------------------------------------------------------------------------


def _network_summary(arch: str, width: float, size: int, photo_skip: bool) -> dict[str, Any]:
    from trainer.nets import build_network, conv_flops, count_params, receptive_radius, size_factor

    model = build_network(arch, width, photo_skip=photo_skip)
    return {"arch": arch, "width": width, "photo_skip": photo_skip, "params": count_params(model),
            "size_factor": size_factor(arch),
            "receptive_radius": receptive_radius(arch),
            "conv_gflops_per_crop": round(conv_flops(arch, width, size, size) / 1e9, 4)}


def create_run(run: RunFolder, settings: Settings, config: StyleConfig, *, style_bytes: bytes, style_suffix: str,
               source: dict[str, Any], photos: Mapping[str, np.ndarray], scan, command: str = "") -> dict[str, Any]:
    """Write a new run folder, all or nothing: it is assembled under a temporary name and renamed."""
    import shutil
    import tempfile

    from nst.images import save_image

    if run.path.exists():
        raise RunError(f"{run.path} already exists; resume it with `trainer fit --name {run.name}` or choose another name")
    run.path.parent.mkdir(parents=True, exist_ok=True)
    staging = RunFolder(tempfile.mkdtemp(prefix=f".{run.name}.", dir=run.path.parent))
    digest = hashlib.sha256(style_bytes).hexdigest()
    style_name = f"style{style_suffix.lower() or '.png'}"
    try:
        write_atomic(staging.path / style_name, style_bytes)
        for name, img in photos.items():
            save_image(staging.photos / f"{name}.png", img)
        write_json(staging.path / "data_files.json",
                   {"root": scan.root, "files": scan.files, "needs_pillow": scan.needs_pillow})
        info = _describe(run, settings, config, source, scan, sorted(photos), style_name, digest, command)
        staging.write_info(info)
        staging.path.chmod(0o755)
        staging.path.rename(run.path)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    return info


def _describe(run: RunFolder, settings: Settings, config: StyleConfig, source: dict[str, Any], scan,
              photo_names: list[str], style_name: str, digest: str, command: str) -> dict[str, Any]:
    """The contents of ``run.json``."""
    import keras
    import tensorflow as tf

    import nst

    return {
        "version": RUN_VERSION,
        "name": run.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "software": {"styletune": nst.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "settings": asdict(settings),
        "network": _network_summary(settings.arch, settings.width, settings.size, settings.photo_skip),
        "style_config": config.to_dict(),
        "source": source,
        "style_file": style_name,
        "style_sha256": digest,
        "data": scan.summary(),
        "preview_photos": photo_names,
    }


# -- the strategy ----------------------------------------------------------------------------------


def choose_strategy():
    """``MirroredStrategy`` over all GPUs when there are several, else the default (one device)."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def freeze_all_but_norm(model) -> None:
    """Leave only the instance-norm layers' gamma and beta trainable (``Settings.tune == "norm"``).

    Dumoulin, Shlens & Kudlur (2017), "A learned representation for artistic style", show
    that one transformer can paint many styles when each style owns nothing but the
    normalisation layers' scale and shift, and that a new style can be added by training
    only those. Magenta's arbitrary model is built on that result, so fine-tuning just
    these ~700 numbers moves the painting's style within what the pretrained
    convolutions can express, and cannot unlearn how they keep the photo's structure
    (measured in docs/trainer.md: all weights at the same steps wash the photo out).
    """
    from trainer.nets import InstanceNorm

    for layer in model.layers:
        if not isinstance(layer, InstanceNorm) and layer.weights:
            layer.trainable = False


class _GracefulInterrupt:
    """First Ctrl-C: finish the current step, save, then stop. Second Ctrl-C: stop at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# -- training -------------------------------------------------------------------------------------


class Trainer:
    """A run folder brought to life: network, optimiser, loss, data, at the newest checkpoint."""

    def __init__(self, run: RunFolder, *, strategy=None, progress: bool = True, data: str | None = None):
        import keras
        import tensorflow as tf

        from nst.gatys import style_size
        from nst.images import load_image, resize_longest
        from nst.losses import style_targets
        from nst.lossnets import FeatureExtractor, get_extractor
        from trainer.nets import build_network

        self.run = run
        self.info = run.read_info()
        self.settings = Settings.from_dict(self.info["settings"])
        self.config = StyleConfig.from_dict(self.info["style_config"])
        self.progress = progress
        s = self.settings

        style_path = run.style_file()
        if hashlib.sha256(style_path.read_bytes()).hexdigest() != self.info["style_sha256"]:
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

        side = style_size((s.size, s.size), cfg.style_scale)
        style_img = tf.constant(resize_longest(self.style, side)[None])
        self.grams = style_targets(self.extractor(style_img), cfg.active_style_layers)

        self.step = 0
        run.remove_leftovers()  # temporary files of a run that was killed mid-write
        if run.checkpoint_steps():
            self.restore()
        elif s.arch == "magenta":  # step 0: Magenta's pretrained transformer with this painting folded in
            from trainer.magenta_net import painting_vector, pretrained_weights

            with self.strategy.scope():
                pretrained_weights(self.model, painting_vector(self.style))
        self._train_step = None
        self._eval_step = None
        self.diverged = False
        self._stylizer = None
        self.features: list[str] | None = None
        self.feature_shape: tuple[int, ...] | None = None

    # -- state -----------------------------------------------------------------------------------
    def restore(self, step: int | None = None) -> int:
        saved, weights, opt_vars = self.run.load_checkpoint(step)
        if len(weights) != len(self.model.get_weights()) or len(opt_vars) != len(self.optimizer.variables):
            raise RunError(f"{self.run.path}: the checkpoint does not match this run's network; it was written by another version")
        with self.strategy.scope():
            self.model.set_weights(weights)
            for var, value in zip(self.optimizer.variables, opt_vars, strict=True):
                var.assign(value)
        self.step = saved
        return saved

    def save(self) -> Path:
        if self.diverged:
            raise TrainingDiverged("refusing to checkpoint weights that are no longer finite")
        opt_vars = [np.asarray(v.numpy()) for v in self.optimizer.variables]
        return self.run.save_checkpoint(self.step, self.model.get_weights(), opt_vars, keep=self.settings.keep_checkpoints)

    # -- the step --------------------------------------------------------------------------------
    def _loss(self, photos, targets):
        from nst.losses import config_loss

        out = self.model(photos, training=True)
        if targets is None:
            targets = self.content_extractor(photos)[self.config.content_layer]
        per_item, terms = config_loss(self.extractor(out), out, targets, self.grams, self.config)
        return per_item, terms

    def _build_steps(self) -> None:
        import tensorflow as tf

        global_batch = float(self.settings.batch)
        model, opt, strategy = self.model, self.optimizer, self.strategy

        def replica_step(photos, targets):
            with tf.GradientTape() as tape:
                per_item, terms = self._loss(photos, targets)
                loss = tf.reduce_sum(per_item) / global_batch
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            logged = {"loss": loss, **{k: tf.reduce_sum(v) / global_batch for k, v in terms.items()}}
            # Finite loss but an overflowing update still ruins the weights: watch the weights too.
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in model.trainable_variables])
            logged["nonfinite_weights"] = 1.0 - tf.cast(finite, tf.float32)
            return logged

        def reduce(values):
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in values.items()}

        @tf.function
        def train_step(batch):
            photos, targets = batch if isinstance(batch, tuple) else (batch, None)
            return reduce(strategy.run(replica_step, args=(photos, targets)))

        @tf.function
        def eval_step(photos):
            per_item, terms = self._loss(photos, None)
            return {"loss": tf.reduce_mean(per_item), **{k: tf.reduce_mean(v) for k, v in terms.items()}}

        self._train_step, self._eval_step = train_step, eval_step

    def measure_step_seconds(self, repeats: int = 1) -> float:
        """Seconds one training step takes on this machine, measured without changing anything.

        Computes the loss and its gradients (what a step costs; applying them is
        negligible) on a random batch of the training shape, once to trace and
        ``repeats`` times timed. Used for the ETA printed before the first step and to fit
        the CPU recipe's steps into its time budget.
        """
        import tensorflow as tf

        s = self.settings
        photos = tf.random.stateless_uniform([s.batch // self.replicas, s.size, s.size, 3], seed=(s.seed, 1))
        model = self.model

        @tf.function
        def probe(x):
            with tf.GradientTape() as tape:
                per_item, _ = self._loss(x, None)
                loss = tf.reduce_mean(per_item)
            return loss, tape.gradient(loss, model.trainable_variables)

        probe(photos)  # trace
        started = time.perf_counter()
        for _ in range(repeats):
            loss, _ = probe(photos)
            float(loss)
        return (time.perf_counter() - started) / repeats

    def set_steps(self, steps: int) -> None:
        """Change the run's total steps (recorded in ``run.json``, as ``trainer fit --steps`` on resume does)."""
        from dataclasses import replace

        self.settings = replace(self.settings, steps=int(steps))
        self.info["settings"]["steps"] = int(steps)
        self.run.write_info(self.info)

    def loss_on(self, photos: np.ndarray) -> dict[str, float]:
        """The loss and its terms on a fixed batch, without training (for tests and reports)."""
        if self._eval_step is None:
            self._build_steps()
        return {k: float(v) for k, v in self._eval_step(np.asarray(photos, np.float32)).items()}

    # -- data ------------------------------------------------------------------------------------
    def dataset(self):
        from trainer.data import training_dataset

        s = self.settings
        if s.precompute and self.features is None:
            from trainer.features import precompute

            self.features, self.feature_shape, _ = precompute(self.files, self.needs_pillow, self.config, s.size,
                                                              s.feature_cache, progress=self.progress)
        ds = training_dataset(self.files, self.needs_pillow, size=s.size, batch=s.batch, seed=s.seed,
                              start_step=self.step, features=self.features, feature_shape=self.feature_shape)
        return self.strategy.experimental_distribute_dataset(ds)

    # -- previews --------------------------------------------------------------------------------
    def preview_photos(self) -> dict[str, np.ndarray]:
        from nst.images import load_image, resize_longest

        return {p.stem: resize_longest(load_image(p), self.settings.preview_side)
                for p in sorted(self.run.photos.glob("*.png"))}

    def stylise_photos(self) -> dict[str, np.ndarray]:
        from trainer.stylize import Stylizer

        s = self.settings
        if self._stylizer is None:  # one traced function, reading the live weights at every preview
            self._stylizer = Stylizer(self.model, s.arch, s.width, photo_skip=s.photo_skip, memory_mb=4096)
        return {name: self._stylizer(img) for name, img in self.preview_photos().items()}

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
        """Train up to step ``until`` (default: the settings' steps); Ctrl-C saves and re-raises."""
        from tqdm import tqdm

        s = self.settings
        until = s.steps if until is None else until
        if self.step >= until:
            return self.step
        if self._train_step is None:
            self._build_steps()
        self.run.truncate_metrics(self.step)
        batches = iter(self.dataset())
        pending: list[dict[str, Any]] = []
        rate = None
        last_saved = self.step
        bar = tqdm(total=until, initial=self.step, desc=f"train {self.run.name}", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        try:
            with _GracefulInterrupt() as interrupt:
                while self.step < until:
                    started = time.perf_counter()
                    values = {k: float(v) for k, v in self._train_step(next(batches)).items()}
                    seconds = time.perf_counter() - started
                    broken = values.pop("nonfinite_weights") > 0
                    if broken or not all(math.isfinite(v) for v in values.values()):
                        what = "the weights" if broken else next(k for k, v in values.items() if not math.isfinite(v))
                        self.diverged = True
                        raise TrainingDiverged(
                            f"{what} became NaN or infinite at step {self.step + 1}; the newest checkpoint (step "
                            f"{last_saved}) is intact; lower --lr or the StyleConfig's weights and resume")
                    self.step += 1
                    img_s = s.batch / max(seconds, 1e-9)
                    rate = img_s if rate is None or self.step <= 2 else 0.9 * rate + 0.1 * img_s
                    pending.append({"step": self.step, **{k: round(v, 6) for k, v in values.items()},
                                    "img_per_s": round(img_s, 3), "seconds": round(seconds, 4),
                                    "time": round(time.time(), 3)})
                    bar.update(1)
                    bar.set_postfix(loss=f"{values['loss']:.4g}", content=f"{values['content']:.3g}",
                                    style=f"{values['style']:.3g}", tv=f"{values['tv']:.3g}", img_s=f"{rate:.2f}",
                                    refresh=False)
                    if len(pending) >= 20 or self.step % s.checkpoint_every == 0:
                        self.run.append_metrics(pending)
                        pending = []
                    if self.step % s.checkpoint_every == 0:
                        self.save()
                        last_saved = self.step
                    if self.step % s.preview_every == 0:
                        self.write_preview()
                    if interrupt.requested:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.run.append_metrics(pending)
            pending = []
            if self.step > last_saved and not self.diverged:
                self.save()
            raise
        finally:
            self.run.append_metrics(pending)
            bar.close()
        if self.step > last_saved:
            self.save()
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
        results = self.stylise_photos()
        for name, img in results.items():
            save_image(self.run.results / f"{name}.png", img)
        self.export_keras()
        return score_results(self.run, self.info, self.preview_photos(), results, self.style, self.step)


# -- scoring --------------------------------------------------------------------------------------


def judge_results(judge_record: Mapping[str, Any] | None, photos: Mapping[str, np.ndarray],
                  results: Mapping[str, np.ndarray], style: np.ndarray) -> tuple[dict[str, dict[str, float]], str]:
    """Per-photo judge scores of ``results``, with the study's judge (:mod:`nst.judge`).

    ``judge_record`` is the study's recorded judge spec; without a study (``--config``)
    the default judge is used. Each photo is judged on its own, so photos of different
    shapes need no cropping.
    """
    from nst.judge import Judge, JudgeSpec

    spec = JudgeSpec.from_dict(dict(judge_record)) if judge_record else JudgeSpec()
    per_photo = {}
    for name, photo in photos.items():
        scores = Judge(spec, photo[None], style).score(results[name][None])
        per_photo[name] = {"style": float(scores.style[0]), "content": float(scores.content[0]),
                           "noise": float(scores.noise[0]),
                           **{k: float(v[0]) for k, v in scores.parts.items()}}
    return per_photo, f"{spec.name} v{spec.version} ({spec.network})"


def score_results(run: RunFolder, info: dict[str, Any], photos: Mapping[str, np.ndarray],
                  results: Mapping[str, np.ndarray], style: np.ndarray, step: int) -> dict[str, Any]:
    """Score the results with the study's judge and write ``scores.json`` beside the proxy's scores.

    ``scores.json`` holds ``{"trained": {...}, "gatys": {...}, ...}`` (means over the test
    photos, the Gatys ones as the study recorded them for the trial): the dashboard shows
    the two side by side. A judge that cannot run here (another judge version, missing
    weights) leaves a ``note`` saying why instead of failing the finished training.
    """
    source = info.get("source", {})
    out: dict[str, Any] = {"step": step, "size": info["settings"].get("preview_size") or info["settings"]["size"]}
    gatys = source.get("gatys_scores")
    if isinstance(gatys, dict):
        out["gatys"] = gatys
    try:
        per_photo, judge_name = judge_results(source.get("judge"), photos, results, style)
    except StyletuneError as exc:
        out["note"] = f"results not scored: {exc}"
    else:
        if not per_photo:
            out["note"] = "results not scored: the run has no test photos"
            write_json(run.scores_file, out)
            return out
        keys = ("style", "content", "noise")
        out["trained"] = {k: round(float(np.mean([p[k] for p in per_photo.values()])), 4) for k in keys}
        out["judge"] = judge_name
        out["per_photo"] = per_photo
    write_json(run.scores_file, out)
    return out
