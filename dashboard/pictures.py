"""What the gallery and the pickers show: which trials first, each photo's results side by side, labels, images.

Plain data and bytes, no Streamlit (like :mod:`dashboard.data`, whose trials table these
functions read).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dashboard.data import BASELINE
from tuner.baseline import Baseline
from tuner.records import StudyRecord, finite


def default_gallery_trials(df: pd.DataFrame, chosen: int | None, limit: int = 4) -> list[int]:
    """The trials shown first in the gallery: the pick, then the Pareto front by style + content."""
    done = df[(df["state"] == "COMPLETE") & df["style"].notna()].copy()
    done["sum"] = done["style"] + done["content"]
    order = [chosen] if chosen is not None and chosen in set(done["number"]) else []
    front = done[done["pareto"]].sort_values("sum")["number"].tolist()
    rest = done[~done["pareto"]].sort_values("sum")["number"].tolist()
    for n in front + rest:
        if n not in order:
            order.append(int(n))
    return order[:limit]


def gallery_rows(record: StudyRecord, df: pd.DataFrame, numbers: Sequence[int],
                 baseline: Baseline | None = None) -> list[dict[str, Any]]:
    """Per test photo: its artifact, the painting's, the baseline's and each selected trial's result (or None).

    At the study's view size where the study has one (the trials table's ``artifacts``
    are the view-size pictures then), else at the proxy size.

    :data:`BASELINE` among ``numbers`` stands for the baseline's result, so it can be
    compared with trials like one.
    """
    by_number = {int(r.number): r.artifacts for r in df.itertuples()}
    base = None if baseline is None else baseline.view_artifacts or baseline.artifacts
    if base is not None:
        by_number[BASELINE] = base
    content_ids = record.content_artifacts
    view_ids = record.content_view_artifacts
    rows = []
    for name in record.content_names or list(content_ids):
        rows.append({
            "photo": name,
            "photo_artifact": view_ids.get(name) or content_ids.get(name),
            "painting_artifact": record.style_artifact,
            "baseline_artifact": base.get(name) if base is not None else None,
            "results": {int(n): (by_number.get(int(n)) or {}).get(name) for n in numbers},
        })
    return rows


def size_note(record: StudyRecord) -> str:
    """One line on the size of the pictures the gallery shows, and what they promise."""
    if record.view_size and record.content_view_artifacts:
        return (f"Pictures at {record.view_size} px, painted as `trainer stylize` paints with the trained network: at the "
                f"{record.paint_side or record.proxy_size or '?'} px side the trial was tuned and painted at, then "
                f"enlarged with the photo's detail restored. "
                + ("The scores are the judge's on these pictures, the off-the-shelf model's too."
                   if record.judges_view else
                   f"The scores are the judge's on them shrunk to {record.proxy_size or '?'} px."))
    if record.proxy_kind == "gatys":
        return (f"Pictures at the proxy size ({record.proxy_size or '?'} px): a Gatys-proxy study renders only at that "
                f"size, so a network trained from a trial paints larger photos with strokes smaller, relative to the "
                f"picture, than these.")
    return (f"Pictures at the proxy size ({record.proxy_size or '?'} px): this study was made without a view size; a "
            f"new study (`tuner search --view-size 512`) also shows each trial at the size you will use.")


def point_trial(point: Mapping[str, Any]) -> int | None:
    """The trial number carried in a clicked point's ``customdata`` (see figures.pareto_figure).

    Streamlit hands ``customdata`` back as a list, a scalar, or (for a row of a 2-D array)
    a dict keyed by column index such as ``{"0": 12}``; all three are accepted.
    """
    custom = point.get("customdata") if isinstance(point, Mapping) else None
    if isinstance(custom, Mapping):
        custom = custom.get("0", next(iter(custom.values()), None))
    elif isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    if isinstance(custom, bool) or not finite(custom) or float(custom) != int(float(custom)):
        return None
    return int(float(custom))


def trial_label(row: Mapping[str, Any]) -> str:
    """``#12 · style 0.31 · content 0.22 · vgg16_hed`` for pickers and captions."""
    bits = [f"#{int(row['number'])}"]
    if finite(row.get("style")):
        bits.append(f"style {float(row['style']):.3f}")
    if finite(row.get("content")):
        bits.append(f"content {float(row['content']):.3f}")
    if isinstance(row.get("network"), str) and row["network"]:
        bits.append(row["network"])
    return " · ".join(bits)


def thumbnail(png: bytes, max_side: int = 240, fmt: str = "JPEG") -> bytes:
    """A small re-encoded copy of an image (hover previews and table thumbnails stay light)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        out = io.BytesIO()
        im.save(out, format=fmt, quality=85)
    return out.getvalue()


def data_uri(data: bytes, mime: str | None = None) -> str:
    """``data:image/...;base64,`` URL, for images inside tables, hover previews and components."""
    if mime is None:
        mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size
