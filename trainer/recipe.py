"""Training recipes: which network, crop size, batch, steps and learning rate ``trainer fit`` uses.

Johnson et al. (2016) trained from random weights for 40,000 steps of 4 crops at 256 px:
hours on a GPU, 4-10 days on a 2-core CPU (``docs/trainer.md``), and runs cut to minutes
on a CPU learn the painting's texture long before they learn to keep the photo (issue
13). So on a CPU the default is not to train from scratch at all: start from Magenta's
arbitrary-stylisation transformer with the painting folded in (Ghiasi et al. 2017;
:mod:`nst.transformer`), which already paints the photo, and fine-tune it with the
study's loss. The paper's recipe stays one flag away (``--recipe paper``).

``auto`` picks ``gpu`` when TensorFlow sees a GPU, else ``cpu``; for a Gatys-proxy study it
picks ``paper`` with a GPU, whose network from random weights is what such a study's
trials predict, and on a CPU says in one line what that would take before it trains
``cpu`` instead (:func:`recipe_for_proxy`). Flags typed on the
command line override the recipe's values one by one. On a CPU, when the user did not
choose ``--steps``, the step count is fitted to :data:`CPU_BUDGET_MINUTES` from a timed
step before the first real one (:func:`fit_steps_to_budget`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: On a CPU, a run chosen by ``auto`` must end within this many minutes (issue 13: "within 60").
CPU_BUDGET_MINUTES = 50.0
#: Fewer steps than this do not move the pretrained network measurably; we say so instead.
MIN_STEPS = 50
#: Steps of a run trained from a network-proxy trial whose study did not record its steps.
PROXY_MATCHED_STEPS = 50


@dataclass(frozen=True)
class Recipe:
    """One named set of training settings; ``why`` is shown to the user before training."""

    name: str
    arch: str
    size: int
    batch: int
    steps: int
    lr: float
    tune: str
    why: str

    def settings(self) -> dict[str, Any]:
        """The :class:`trainer.fit.Settings` fields this recipe sets."""
        return {k: v for k, v in asdict(self).items() if k not in ("name", "why")}

    def describe(self) -> str:
        return (f"{self.name}: {self.arch}, {self.size} px crops, batch {self.batch}, {self.steps} steps, "
                f"Adam {self.lr:g} ({self.why})")


RECIPES: dict[str, Recipe] = {
    "cpu": Recipe("cpu", "magenta", 128, 4, 600, 5e-3, "norm",
                  "fine-tune Magenta's pretrained transformer for this painting; minutes on a CPU"),
    "gpu": Recipe("gpu", "magenta", 256, 4, 4000, 5e-3, "norm",
                  "fine-tune Magenta's pretrained transformer at the paper's crop size"),
    "paper": Recipe("paper", "johnson", 256, 4, 40_000, 1e-3, "all",
                    "Johnson et al. 2016 from random weights: hours on a GPU, days on a CPU"),
}
RECIPE_CHOICES = ("auto", *RECIPES)


def device_summary() -> tuple[str, int]:
    """``("2 GPUs (NVIDIA ...)" or "CPU (8 cores)", number of GPUs)``, as TensorFlow sees the machine."""
    import os

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
            except (ValueError, RuntimeError):
                names.append(gpu.name)
        return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({', '.join(sorted(set(names)))})", len(gpus)
    return f"CPU ({os.cpu_count()} cores)", 0


def choose_recipe(requested: str, gpus: int) -> Recipe:
    """The recipe ``requested`` names; ``auto`` is ``gpu`` with a GPU, else ``cpu``."""
    from nst.errors import ConfigError

    if requested == "auto":
        return RECIPES["gpu" if gpus else "cpu"]
    if requested not in RECIPES:
        raise ConfigError(f"unknown recipe {requested!r}; choose one of {', '.join(RECIPE_CHOICES)}")
    return RECIPES[requested]


def recipe_for_proxy(requested: str, gpus: int, proxy: Mapping[str, Any] | None) -> tuple[Recipe, bool]:
    """The recipe for a run from a study whose trials ``proxy`` rendered; and whether ``paper`` was set aside.

    A network-proxy study's trials predict Magenta's network fine-tuned on its norm layers
    (:func:`proxy_matched_settings`), and so do runs without a study: the device decides,
    as :func:`choose_recipe`. A Gatys-proxy study's trials are pixel optimisations, which
    predict a network trained from random weights to convergence (Johnson et al. 2016: a
    trained network reaches the loss of ~50-100 L-BFGS iterations), not a fine-tuned
    Magenta: ``auto`` gives ``paper`` with a GPU. On a CPU ``paper`` takes days, so
    ``auto`` trains ``cpu`` instead and returns True, and ``trainer fit`` says so in one
    line (:func:`scratch_line`). A recipe the user typed is always what runs.
    """
    gatys = bool(proxy) and (proxy.get("kind") or "gatys") == "gatys"
    if requested != "auto" or not gatys:
        return choose_recipe(requested, gpus), False
    return (RECIPES["paper"], False) if gpus else (RECIPES["cpu"], True)


def measure_matmul_gflops(n: int = 1024, repeats: int = 3) -> float:
    """This machine's float32 matrix-multiply rate right now, in GFLOP/s (best of ``repeats``; ``2 n^3`` a product)."""
    import time

    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    product = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    product().numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def format_scratch_line(step_gflop: float, rate_gflops: float, instead: Recipe) -> str:
    """The one line a Gatys-proxy study's run prints on a CPU when ``auto`` trained ``instead`` of ``paper``."""
    paper = RECIPES["paper"]
    seconds = paper.steps * step_gflop / max(rate_gflops, 1e-9)
    return (f"gatys-proxy study: its trials predict a network trained from random weights (recipe paper: "
            f"{paper.arch}, {paper.size} px, batch {paper.batch}, {paper.steps} steps), which would take at least "
            f"{format_eta(seconds)} here ({step_gflop:.0f} GFLOP a step at the {rate_gflops:.0f} GFLOP/s this CPU "
            f"multiplies matrices at); training recipe {instead.name} instead ({instead.arch} fine-tuned, which the "
            f"proxy does not predict) unless you type --recipe paper")


def scratch_line(config, instead: Recipe) -> str:
    """:func:`format_scratch_line` with the paper step's FLOPs for ``config``'s loss network, and the measured rate."""
    from trainer.costs import training_step_flops

    paper = RECIPES["paper"]
    flops = sum(training_step_flops(paper.arch, 1.0, config, paper.size, paper.batch).values())
    return format_scratch_line(flops / 1e9, measure_matmul_gflops(), instead)


def settings_for(recipe: Recipe, explicit: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the recipe's values, then what the user typed (each later one wins)."""
    return {**defaults, **recipe.settings(), **explicit}


def proxy_matched_settings(proxy: Mapping[str, Any] | None, settings: Mapping[str, Any],
                           explicit: Mapping[str, Any]) -> dict[str, Any]:
    """The values to change so that training lands where the study's network proxy did.

    A network-proxy trial (:mod:`nst.netproxy`) was rendered by tuning the pretrained
    transformer's normalisation layers with Adam at the study's learning rate. Training
    that same network the same way, on many photos instead of the test photos, keeps the
    picture the person chose; so a run that fine-tunes ``magenta``'s normalisation takes
    the proxy's learning rate and its number of steps (``proxy["steps"]``, the study's;
    :data:`PROXY_MATCHED_STEPS` when absent), unless the user typed them. A proxy with
    the photo blend (``proxy["blend"]``) gives the run the same blend (``photo_skip``).
    A proxy that tuned on crops of photos resized to ``proxy["paint_side"]`` gives the run
    that ``scale_side``, so its strokes are learned at the scale of the same pictures;
    unless typed, and only when the crops fit in it (a run asked for larger crops cuts
    them from the whole photo, as without a paint side).

    When the user types more ``--steps`` than the proxy took but no ``--lr``, the rate is
    cut by the same factor (``lr * proxy_steps / steps``): Adam moves each parameter by
    about the rate per step, so the run covers the proxy's distance along the loss, and
    the extra steps go to more photos rather than further past where the proxy stopped.
    At the proxy's rate, 200 steps drifted from the trial (content +0.05 at 50 steps,
    +0.09 at 200); with the rate cut they stay as close as 50 steps (docs/trainer.md).
    Other proxies and other networks change nothing.
    """
    if not proxy or proxy.get("kind") != "network":
        return {}
    if settings.get("arch") != "magenta" or settings.get("tune") != "norm":
        return {}
    proxy_lr, proxy_steps = _proxy_run(proxy)
    out: dict[str, Any] = {}
    if "lr" not in explicit:
        steps = int(explicit.get("steps", proxy_steps))
        out["lr"] = proxy_lr * min(1.0, proxy_steps / max(steps, 1))
    if "steps" not in explicit:
        out["steps"] = proxy_steps
    if proxy.get("blend") and "photo_skip" not in explicit:
        out["photo_skip"] = True
    paint_side = int(proxy.get("paint_side") or 0)
    if paint_side and "scale_side" not in explicit and paint_side >= int(settings.get("size") or 0):
        out["scale_side"] = paint_side
    return out


def _proxy_run(proxy: Mapping[str, Any]) -> tuple[float, int]:
    """The network proxy's learning rate and steps, as the study recorded them (defaults when it did not)."""
    from nst.config import PROXY_LR

    return float(proxy.get("lr", PROXY_LR)), int(proxy.get("steps") or PROXY_MATCHED_STEPS)


def describe_match(matched: Mapping[str, Any], proxy: Mapping[str, Any]) -> str:
    """The line ``trainer fit`` prints when :func:`proxy_matched_settings` changed something."""
    proxy_lr, proxy_steps = _proxy_run(proxy)
    parts = []
    if "lr" in matched:
        lr = matched["lr"]
        parts.append(f"lr {lr:g}" if lr == proxy_lr else
                     f"lr {lr:g} (the proxy's {proxy_lr:g} over {proxy_steps} steps, spread over the steps asked for)")
    if "steps" in matched:
        parts.append(f"steps {matched['steps']}")
    if matched.get("photo_skip"):
        parts.append("photo blend on")
    flags = "--lr/--steps"
    if matched.get("scale_side"):
        parts.append(f"crops of {matched['scale_side']} px pictures, as the proxy's")
        flags += "/--scale-side"
    return ("matched to the study's network proxy, so the network keeps the look of the trial: "
            + ", ".join(parts) + f" ({flags} override)")


def fit_steps_to_budget(steps: int, seconds_per_step: float, budget_minutes: float = CPU_BUDGET_MINUTES) -> int:
    """The most steps up to ``steps`` that fit ``budget_minutes`` at ``seconds_per_step``.

    It only ever lowers the count: a cut stops at :data:`MIN_STEPS`, and a run asked for
    fewer steps than that (a demo study's 30 proxy steps, matched) keeps its own number.
    """
    if seconds_per_step <= 0:
        return steps
    fits = int(budget_minutes * 60 / seconds_per_step)
    return min(steps, max(MIN_STEPS, fits))


def format_eta(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def plan_and_announce(trainer, device: str, *, fit_budget: bool) -> str:
    """Time one step, fit the steps to the CPU budget when asked, and return the line to print before step 1.

    ``fit_budget`` is true for a new CPU run whose steps came from the recipe (not typed):
    then the steps are lowered, if needed, so the run ends within :data:`CPU_BUDGET_MINUTES`,
    and ``run.json`` records the fitted number (a resume continues to the same end).
    """
    s = trainer.settings
    remaining = s.steps - trainer.step
    if remaining <= 0:
        return f"device: {device}; run {trainer.run.name} already at step {trainer.step} of {s.steps}"
    seconds = trainer.measure_step_seconds()
    note = ""
    if fit_budget:
        fitted = fit_steps_to_budget(s.steps, seconds)
        if fitted != s.steps:
            note = f" (the recipe's {s.steps} steps would take {format_eta(seconds * s.steps)}; fitted to " \
                   f"{CPU_BUDGET_MINUTES:g} min)"
            trainer.set_steps(fitted)
            remaining = fitted - trainer.step
    recipe = s.recipe or "custom"
    net = s.arch + ((" + photo blend" if s.arch == "magenta" else " + photo skip") if s.photo_skip else "")
    crops = f"{s.size} px" + (f" crops of {s.scale_side} px pictures" if s.scale_side else "")
    return (f"device: {device}; recipe {recipe}: {net}, {crops}, batch {s.batch}, {trainer.settings.steps} steps, "
            f"Adam {s.lr:g}{note}; ETA {format_eta(seconds * remaining)} ({seconds:.2f} s/step measured here)")
