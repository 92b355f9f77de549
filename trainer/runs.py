"""A training run's folder, which describes itself (nanoGPT keeps model args beside weights).

``studies/runs/NAME/`` holds everything needed to resume, stylise, export or compare a
run without the command line that made it::

    run.json            settings, StyleConfig, network, data summary, where the config came from
    style.<ext>         the painting, byte for byte (its sha256 is in run.json)
    preview_photos/     the study's test photos the previews are made from
    checkpoints/        step_<N>.npz: model weights, optimiser state, step (last few kept)
    metrics.jsonl       one JSON line per step: loss, its terms, images per second
    previews/           step_<N>.png: test photos (top) and the network's results (bottom)
    results/            the final results at full preview size, one PNG per test photo
    model.keras         the trained network (weights + architecture), written at the end
    scores.json         the judge's scores of the results beside the proxy's (Gatys) scores
    export/             SavedModel / TFLite files from ``trainer export``

Every file is written to a temporary name in the same folder and renamed, so a crash
or Ctrl-C never leaves a half-written checkpoint where a resume would read it.
``run.json`` is a :class:`RunRecord` and each line of ``metrics.jsonl`` reads through
:func:`metric_row`: ``trainer`` writes them, the dashboard reads them, with the same names.
Checkpoints are plain ``.npz`` arrays read with ``allow_pickle=False``: loading one runs
no code, and the architecture always comes from this package, never from the file. The
optimiser's arrays are the list Keras' ``Optimizer.save_own_variables`` gives, in the
order of ``optimizer.variables`` (``opt_0000`` is its step counter), which is what
checkpoints have always held, so older run folders resume unchanged. :func:`create_run` writes a new folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nst.errors import StyletuneError
from nst.files import atomic_writer, staged_dir

if TYPE_CHECKING:
    from nst.config import StyleConfig
    from trainer.settings import Settings

RUN_VERSION = 1
DEFAULT_RUNS = "studies/runs"
_CKPT_RE = re.compile(r"^step_(\d{6,})\.npz$")


class RunError(StyletuneError):
    """A run folder that cannot be used."""


#: Keys of ``source`` that name the trial a run was trained from (runs of early versions kept them at the top).
_ORIGIN = ("study", "trial", "storage")


@dataclass(frozen=True)
class RunRecord:
    """``run.json``: what a run folder says about itself, written by :func:`create_run`.

    ``settings``: the :class:`~trainer.settings.Settings` as a JSON object (``steps`` changes
    when a resume asks for more, :meth:`with_steps`); ``network``: its architecture summary
    (``arch``, ``width``, ``photo_skip``, ``params``, ...); ``style_config``: the StyleConfig;
    ``source``: where the loss came from (``kind``, ``spec``; from a study also ``study``,
    ``trial``, ``storage``, ``proxy``, ``judge``, ``gatys_scores``; from a file
    ``config_file``); ``style_file``/``style_sha256``: the painting copied into the folder;
    ``data``: the training photos' summary; ``preview_photos``: the test photo names.
    :meth:`from_dict` is lenient (a missing or malformed key reads as its default, so a run
    still being written lists); keys this version does not know are kept in ``extra`` and
    written back. :meth:`to_dict` writes every field, in this order.
    """

    version: int = RUN_VERSION
    name: str = ""
    created: str = ""
    command: str = ""
    software: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)
    style_config: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    style_file: str = ""
    style_sha256: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    preview_photos: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Any) -> RunRecord:
        """Read ``run.json``'s object. Older spellings read too: ``config`` for ``style_config``, and
        ``study``/``trial``/``storage`` at the top level rather than in ``source``."""
        raw = raw if isinstance(raw, Mapping) else {}
        default = cls()

        def get(name: str, kind: type | tuple[type, ...]) -> Any:
            value = raw.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else getattr(default, name)

        config = raw.get("style_config", raw.get("config"))
        names = raw.get("preview_photos")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            version=get("version", int), name=get("name", str), created=get("created", str),
            command=get("command", str), software=dict(get("software", Mapping)),
            settings=dict(get("settings", Mapping)), network=dict(get("network", Mapping)),
            style_config=dict(config) if isinstance(config, Mapping) else None,
            source={**{k: raw[k] for k in _ORIGIN if k in raw}, **get("source", Mapping)},
            style_file=get("style_file", str), style_sha256=get("style_sha256", str), data=dict(get("data", Mapping)),
            preview_photos=tuple(str(n) for n in names) if isinstance(names, list | tuple) else (),
            extra={k: v for k, v in raw.items() if k not in known and k != "config" and k not in _ORIGIN},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``run.json``, the form :meth:`from_dict` reads back."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["preview_photos"] = list(self.preview_photos)
        return {**out, **self.extra}

    def with_steps(self, steps: int) -> RunRecord:
        """The record with ``settings.steps`` changed (a resume told to train on, a fitted budget)."""
        return replace(self, settings={**self.settings, "steps": int(steps)})

    @property
    def origin(self) -> dict[str, Any]:
        """``{"study", "trial", "storage"}`` of the trial the run was trained from (None each when not from a study)."""
        out = {k: self.source.get(k) for k in _ORIGIN}
        try:
            out["trial"] = None if out["trial"] is None else int(out["trial"])
        except (TypeError, ValueError):
            out["trial"] = None
        return out


def metric_row(line: str) -> dict[str, float] | None:
    """One line of ``metrics.jsonl`` (``{"step", "loss", <terms>, "img_per_s", "seconds", "time"}``):
    its finite numbers, ``step`` an int; None for a line torn by a crash or without a step."""
    import math

    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict):
        return None
    clean = {k: float(v) for k, v in row.items()
             if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    if "step" not in clean:
        return None
    clean["step"] = int(clean["step"])
    return clean


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    from nst.files import write_atomic as _write

    return _write(path, data)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def run_path(ref: str, runs_dir: str | os.PathLike[str] = DEFAULT_RUNS, *, must_exist: bool = True) -> Path:
    """A run given by name (inside ``runs_dir``) or by the path of its folder.

    A bare name is checked with :func:`tuner.reader.check_name`, so ``..`` or ``/`` can
    never point outside ``runs_dir``. Anything containing a path separator is taken as
    a folder path the user typed.
    """
    from tuner.reader import check_name

    if os.sep in ref or (os.altsep and os.altsep in ref):
        path = Path(ref)
    else:
        path = Path(runs_dir) / check_name(ref, "run name")
    if must_exist and not (path / "run.json").is_file():
        runs = sorted(p.parent.name for p in Path(runs_dir).glob("*/run.json")) if Path(runs_dir).is_dir() else []
        hint = f"; runs in {runs_dir}: {', '.join(runs)}" if runs else ""
        raise RunError(f"{path}: not a training run (no run.json); train one with `trainer fit`{hint}")
    return path


class RunFolder:
    """Paths and small readers/writers for one run folder."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    # paths ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info_file(self) -> Path:
        return self.path / "run.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def previews(self) -> Path:
        return self.path / "previews"

    @property
    def results(self) -> Path:
        return self.path / "results"

    @property
    def photos(self) -> Path:
        return self.path / "preview_photos"

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def scores_file(self) -> Path:
        return self.path / "scores.json"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    def style_file(self) -> Path:
        found = sorted(self.path.glob("style.*"))
        if not found:
            raise RunError(f"{self.path}: the painting (style.*) is missing; the run folder is incomplete")
        return found[0]

    # run.json ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.info_file.is_file()

    def read_info(self) -> RunRecord:
        try:
            info = json.loads(self.info_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path}: no run.json; not a training run") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{self.info_file}: unreadable ({exc.__class__.__name__}); restore it or start a new run") from None
        if not isinstance(info, dict) or info.get("version") != RUN_VERSION:
            raise RunError(f"{self.info_file}: not a version-{RUN_VERSION} run description")
        return RunRecord.from_dict(info)

    def write_info(self, info: RunRecord) -> None:
        write_json(self.info_file, info.to_dict())

    # checkpoints ------------------------------------------------------------------------
    def checkpoint_steps(self) -> list[int]:
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.checkpoints.iterdir() if (m := _CKPT_RE.match(p.name)))

    def checkpoint_file(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.npz"

    def save_checkpoint(self, step: int, model_weights: list[np.ndarray], optimizer_vars: list[np.ndarray],
                        keep: int = 3) -> Path:
        """Write ``step_<N>.npz`` atomically, then drop all but the newest ``keep``."""
        arrays = {f"model_{i:04d}": np.asarray(w) for i, w in enumerate(model_weights)}
        arrays.update({f"opt_{i:04d}": np.asarray(v) for i, v in enumerate(optimizer_vars)})
        arrays["step"] = np.asarray(step, np.int64)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        target = self.checkpoint_file(step)
        with atomic_writer(target) as fh:
            np.savez(fh, **arrays)
        for old in self.checkpoint_steps()[:-keep]:
            self.checkpoint_file(old).unlink(missing_ok=True)
        return target

    def remove_leftovers(self, min_age_s: float = 30.0) -> int:
        """Delete temporary files that killed runs left behind; returns how many.

        Every write goes to a hidden temporary name first (``.<name>.*.tmp`` through
        :mod:`nst.files`, ``.model.keras.*.keras`` for the Keras model; ``.ckpt.*.npz`` from
        older versions), so a process killed mid-write leaves one behind: harmless, but a
        partial checkpoint can be as large as a real one, and a run that crashes often would
        fill its disk. Only files untouched for ``min_age_s`` seconds go, so a write in
        progress in another process (a second ``trainer fit`` on the same run) is never cut.
        """
        import time

        now = time.time()
        removed = 0
        for folder in (self.path, self.checkpoints, self.previews, self.results):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                stale = p.is_file() and p.name.startswith(".") and (
                    p.name.startswith((".ckpt.", ".model.")) or p.name.endswith(".tmp"))
                try:
                    if stale and now - p.stat().st_mtime > min_age_s:
                        p.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def load_checkpoint(self, step: int | None = None) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
        """``(step, model weights, optimiser variables)`` of a checkpoint (default: the newest)."""
        steps = self.checkpoint_steps()
        if not steps:
            raise RunError(f"{self.path}: no checkpoint yet; train with `trainer fit --name {self.name}`")
        step = steps[-1] if step is None else step
        path = self.checkpoint_file(step)
        try:
            with np.load(path, allow_pickle=False) as data:
                model = [data[k] for k in sorted(k for k in data.files if k.startswith("model_"))]
                opt = [data[k] for k in sorted(k for k in data.files if k.startswith("opt_"))]
                saved = int(data["step"])
        except (OSError, ValueError, KeyError) as exc:
            raise RunError(f"{path}: checkpoint unreadable ({exc.__class__.__name__}); delete it to fall back to an older one") from None
        return saved, model, opt

    # metrics ----------------------------------------------------------------------------
    def append_metrics(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with open(self.metrics_file, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
            fh.flush()

    def truncate_metrics(self, after_step: int) -> None:
        """Forget metrics of steps beyond ``after_step`` (work lost since the checkpoint we resume from)."""
        if not self.metrics_file.exists():
            return
        keep = []
        for line in self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
            row = metric_row(line)  # None for a line torn by a crash
            if row is not None and row["step"] <= after_step:
                keep.append(line)
        write_atomic(self.metrics_file, "".join(f"{line}\n" for line in keep))

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.jsonl`` (:func:`metric_row`), in file order; torn lines left out."""
        if not self.metrics_file.exists():
            return []
        lines = self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return [row for line in lines if (row := metric_row(line)) is not None]


# -- creating a run ------------------------------------------------------------------------------


def _network_summary(arch: str, width: float, size: int, photo_skip: bool) -> dict[str, Any]:
    from trainer.costs import conv_flops, count_params, receptive_radius
    from trainer.nets import build_network, size_factor

    model = build_network(arch, width, photo_skip=photo_skip)
    return {"arch": arch, "width": width, "photo_skip": photo_skip, "params": count_params(model),
            "size_factor": size_factor(arch),
            "receptive_radius": receptive_radius(arch),
            "conv_gflops_per_crop": round(conv_flops(arch, width, size, size) / 1e9, 4)}


def create_run(run: RunFolder, settings: Settings, config: StyleConfig, *, style_bytes: bytes, style_suffix: str,
               source: dict[str, Any], photos: Mapping[str, np.ndarray], scan, command: str = "") -> RunRecord:
    """Write a new run folder, all or nothing: it is assembled under a hidden name and renamed (``nst.files.staged_dir``)."""
    from nst.images import save_image

    exists = RunError(f"{run.path} already exists; resume it with `trainer fit --name {run.name}` or choose another name")
    if run.path.exists():
        raise exists
    digest = hashlib.sha256(style_bytes).hexdigest()
    style_name = f"style{style_suffix.lower() or '.png'}"
    try:
        with staged_dir(run.path, replace=False) as folder:
            staging = RunFolder(folder)
            write_atomic(staging.path / style_name, style_bytes)
            for name, img in photos.items():
                save_image(staging.photos / f"{name}.png", img)
            write_json(staging.path / "data_files.json",
                       {"root": scan.root, "files": scan.files, "needs_pillow": scan.needs_pillow})
            info = _describe(run, settings, config, source, scan, sorted(photos), style_name, digest, command)
            staging.write_info(info)
    except FileExistsError:  # another process created the run meanwhile; it is left as it is
        raise exists from None
    return info


def _describe(run: RunFolder, settings: Settings, config: StyleConfig, source: dict[str, Any], scan,
              photo_names: list[str], style_name: str, digest: str, command: str) -> RunRecord:
    """The contents of ``run.json``."""
    import keras
    import tensorflow as tf

    import nst

    return RunRecord(
        name=run.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
        software={"styletune": nst.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        settings=asdict(settings),
        network=_network_summary(settings.arch, settings.width, settings.size, settings.photo_skip),
        style_config=config.to_dict(),
        source=source,
        style_file=style_name,
        style_sha256=digest,
        data=scan.summary(),
        preview_photos=tuple(photo_names),
    )
