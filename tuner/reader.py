"""The public, read-mostly view of what the tuner stores: the contract with trainer and dashboard.

Everything here goes through Optuna's public API (never its tables), so it works on any
storage Optuna supports: SQLite by default, PostgreSQL for several machines. What a study
and its trials hold is defined as types in :mod:`tuner.records` (``StudyRecord``,
``TrialRecord``); this module finds studies, resolves which trial to train and reads
artifacts.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nst.config import StyleConfig
from tuner.records import (  # noqa: F401 - the attribute names, re-exported for the tuner's writers
    ARTIFACTS_ATTR,
    CHOSEN_ATTR,
    CONFIG_ATTR,
    CURVE_ATTR,
    SCORES_ATTR,
    STUDY_ATTR,
    StudyRecord,
    TrialRecord,
    chosen_trial,
)
from tuner.storage import DEFAULT_STORAGE, StorageError, check_url, open_storage, sqlite_path  # noqa: F401 - re-exported

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str = "study name") -> str:
    """Refuse names that could escape a folder or confuse a shell (``..``, ``/``, spaces...)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise StorageError(
            f"{what} {name!r} is not allowed; use letters, digits, '.', '_' or '-' (at most 100, no '..')"
        )
    return name


def safe_name(text: str, fallback: str = "study") -> str:
    """A name :func:`check_name` accepts, made from a file name: "été à Giverny" -> "ete_a_Giverny".

    ASCII letters, digits, '.', '_' and '-' are kept; an accented letter keeps its base
    letter (Unicode NFKD); any other character becomes '_'; '..' and leading dots or
    dashes go. So a painting or photo with spaces or non-ASCII characters in its file name
    still gets a usable default study, photo or run name.
    """
    import unicodedata

    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch if ch.isalnum() or ch in "._-" else "_")
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii() and c.isalnum())
            out.append(base or "_")
    name = "".join(out)
    while ".." in name:
        name = name.replace("..", "_")
    return name.lstrip("._-")[:100] or fallback


def artifact_dir(url: str, override: str | os.PathLike[str] | None = None, recorded: str | None = None) -> Path:
    """Where the artifacts of a study in ``url`` are read and written; ``url`` is checked first.

    ``override`` (``--artifacts``) if given; else ``recorded``, the folder the study was made
    with (:attr:`StudyRecord.artifact_folder`), while it exists; else ``artifacts/`` beside
    the SQLite file (so a study moved together with its database is still found).
    """
    check_url(url)
    if override:
        return Path(override)
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    db = sqlite_path(url)
    if db is None:
        raise StorageError(f"{url}: not a SQLite file, so give --artifacts DIR for the images")
    return db.parent / "artifacts"


def artifact_places(url: str, override: str | os.PathLike[str] | None = None,
                    recorded: str | None = None) -> list[tuple[Path, str]]:
    """Every folder :func:`artifact_dir` considers for a study, with where it comes from, for messages."""
    if override:
        return [(Path(override), "--artifacts")]
    places = [(Path(recorded), "recorded by the study")] if recorded else []
    db = sqlite_path(url)
    if db is not None:
        places.append((db.parent / "artifacts", "beside the database"))
    return places


@dataclass(frozen=True)
class Resolved:
    """A trial picked for training: its config, the study's painting, and the folder its artifacts are read from."""

    study_name: str
    trial_number: int
    config: StyleConfig
    style_image: np.ndarray
    style_sha256: str
    record: StudyRecord
    artifacts: Path


def study_record(study) -> dict[str, Any]:
    """The study's record as a JSON object (:meth:`StudyRecord.to_user_attrs`), for code that extends it;
    readers use :func:`read_record`."""
    return read_record(study).to_user_attrs()[STUDY_ATTR]


def read_record(study) -> StudyRecord:
    """The study's :class:`~tuner.records.StudyRecord`; a one-line error for a study ``tuner search`` did not make."""
    rec = StudyRecord.from_user_attrs(study.user_attrs)
    if rec is None:
        raise StorageError(f"study {study.study_name!r} was not made by `tuner search` (no {STUDY_ATTR} record)")
    return rec


def load_study(storage, name: str):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        hint = f"; studies here: {', '.join(names)}" if names else "; this storage has no studies yet"
        raise StorageError(f"no study named {name!r}{hint}") from None


def latest_study_name(storage) -> str:
    """The study whose newest trial finished or started last (the one a user just worked on)."""
    import optuna

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        raise StorageError("this storage has no studies yet; run `tuner search --style PAINTING` first")
    def last(s) -> float:
        return s.datetime_start.timestamp() if s.datetime_start else 0.0
    return max(summaries, key=last).study_name


#: The default pick rule in words, as ``tuner best`` and the dashboard state it.
DEFAULT_RULE = ("smallest style + content among feasible trials, those that beat the off-the-shelf baseline first; "
                "when none does, the one that misses it by least")


def finished_trials(study) -> list[TrialRecord]:
    """The study's finished trials with both judge scores, as records."""
    import optuna

    return [r for r in map(TrialRecord.from_trial,
                           study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) if r.scored]


def default_trial(study) -> int:
    """The trial to train when nobody chose one (:data:`DEFAULT_RULE`).

    Rule: among finished, feasible trials, the one with the smallest sum of the two judge
    scores (style + content, both 0 = ideal, 1 = no better than doing nothing): the
    trial closest to the ideal corner of the Pareto front in the judge's own units. When
    some of them beat the study's stored off-the-shelf baseline
    (:func:`tuner.records.beating_trials`), the pick is made among those only: a trial
    with a smaller sum that loses to the free model on one score is not worth training.
    When none does (two objectives), the pick is the trial that misses it by least: the
    smallest :meth:`tuner.records.Baseline.shortfall`, the larger of its two gaps to the
    baseline's scores. The smallest sum would then pick whichever end of the front trades
    most cheaply, often a barely tinted photo; the nearest miss is the trial most like
    the free model's balance of painting and photo, only not better.
    """
    from tuner.records import beating_trials, read_baseline

    candidates = [r for r in finished_trials(study) if r.style_config and r.feasible]
    if not candidates:
        raise StorageError(f"study {study.study_name!r} has no finished trial yet; let `tuner search` run longer")
    base = read_baseline(study.user_attrs)
    rec = StudyRecord.from_user_attrs(study.user_attrs)
    tradeoff = rec.tradeoff if rec else None
    winners = beating_trials(base, candidates, tradeoff) if base is not None else []
    if not winners and base is not None and tradeoff is None:
        return min(candidates, key=lambda r: (base.shortfall(r.scores), r.total, r.number)).number
    return min(winners or candidates, key=lambda r: (r.total, r.number)).number


def baseline_note(study) -> str | None:
    """The one line saying no trial of ``study`` beats its stored off-the-shelf baseline, else None.

    None too when the study has no baseline stored (it could not be computed, or nobody
    has viewed the study yet): then there is no verdict to report. Reads only, computes nothing.
    """
    from tuner.records import losing_note, read_baseline

    rec = StudyRecord.from_user_attrs(study.user_attrs)
    return losing_note(read_baseline(study.user_attrs), finished_trials(study), rec.tradeoff if rec else None)


def chosen_or_default(study) -> int:
    chosen = chosen_trial(study.user_attrs)
    return chosen if chosen is not None else default_trial(study)


def trial_record(study, number: int) -> TrialRecord:
    """Trial ``number`` of ``study`` as a :class:`~tuner.records.TrialRecord`; a one-line error if there is none."""
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None:
        raise StorageError(f"study {study.study_name!r} has no trial {number}; "
                           f"`tuner show {study.study_name} --all` lists its finished trials")
    return TrialRecord.from_trial(trial)


def trial_config(study, number: int) -> StyleConfig:
    """The StyleConfig of finished trial ``number``; a one-line error for one that did not finish."""
    rec = trial_record(study, number)
    if not rec.style_config or rec.state != "COMPLETE":
        raise StorageError(f"trial {number} of {study.study_name!r} did not finish ({rec.state}); pick a finished one")
    return StyleConfig.from_dict(rec.style_config)


def read_artifact(url: str, artifact_id: str, artifacts: str | os.PathLike[str] | None = None) -> bytes:
    """Bytes of one stored artifact (ids are Optuna's; never a path taken from a request)."""
    if not re.fullmatch(r"[A-Za-z0-9-]{8,64}", artifact_id):
        raise StorageError(f"{artifact_id!r} is not an artifact id")
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts.exceptions import ArtifactNotFound

    folder = artifact_dir(url, artifacts)
    store = FileSystemArtifactStore(str(folder))
    try:
        with store.open_reader(artifact_id) as fh:
            return fh.read()
    except (ArtifactNotFound, IsADirectoryError):
        raise StorageError(f"artifact {artifact_id} is missing from {folder}; if the artifacts folder was "
                           "moved, pass --artifacts DIR") from None


def read_image_artifact(url: str, artifact_id: str, artifacts: str | os.PathLike[str] | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(read_artifact(url, artifact_id, artifacts))) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def resolve(spec: str, url: str = DEFAULT_STORAGE, artifacts: str | os.PathLike[str] | None = None) -> Resolved:
    """Resolve ``best``, ``STUDY`` or ``STUDY:TRIAL`` to a config and the study's painting.

    ``best`` is the chosen-or-default trial of the most recently active study. The style
    image is read back from the study's artifact and checked against the recorded hash.
    """
    import hashlib

    storage = open_storage(url)
    if spec == "best":
        name, number = latest_study_name(storage), None
    elif ":" in spec:
        name, _, num = spec.rpartition(":")
        if not num.isdigit():
            raise StorageError(f"{spec!r}: expected STUDY:TRIAL with a trial number, e.g. monet:12")
        number = int(num)
    else:
        name, number = spec, None
    study = load_study(storage, name)
    rec = read_record(study)
    if number is None:
        number = chosen_or_default(study)
    config = trial_config(study, number)
    if rec.style_artifact is None:
        raise StorageError(f"study {name!r} has no stored painting; its record is incomplete")
    folder = artifact_dir(url, artifacts, rec.artifact_folder)
    data = read_artifact(url, rec.style_artifact, folder)
    digest = hashlib.sha256(data).hexdigest()
    if digest != rec.style_sha256:
        raise StorageError(f"the stored painting of {name!r} does not match its recorded hash; the artifact store was altered")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        style = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return Resolved(name, number, config, style, digest, rec, folder)
