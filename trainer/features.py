"""Precomputed content features: pay the loss network's forward pass over the photos once.

Every training step needs the content target, the loss network's features of the photo
at the content layer. They do not depend on the transformation network, so they can be
computed once per photo and read from disk on every later epoch and every later run with
the same loss network, pooling, content layer, crop size and file.

The price is the crop: a cached feature belongs to one exact set of pixels, so with
precomputation each photo is always seen as its centre crop (instead of a fresh random
crop each epoch). ``bench/train_throughput.py`` measures what it saves per step; the
disk cost is ``(size / stride)^2 x channels x 2 bytes`` per photo (float16), e.g. 1 MiB
per photo for ``block4_conv2`` at 256 px.

Files live in ``<cache>/<network>-<pooling>-<layer>-<size>/<key>.f16`` where ``key``
hashes the photo's absolute path, byte size and modification time, so an edited photo
gets a new entry. Crops cut from photos resized to a ``scale_side`` are other pixels than
crops of the whole photo, so they live in ``...-<size>-of<scale_side>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nst.config import StyleConfig

FORMAT = "float16"


def cache_folder(root: str | os.PathLike[str], config: StyleConfig, size: int, scale_side: int = 0) -> Path:
    scale = f"-of{scale_side}" if scale_side else ""  # runs without a scale side keep the folders they had
    return Path(root) / f"{config.network}-{config.pooling}-{config.content_layer}-{size}{scale}"


def feature_key(path: str) -> str:
    st = os.stat(path)
    ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(ident.encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    from nst.files import write_atomic

    write_atomic(path, data)


def feature_shape(config: StyleConfig, size: int) -> tuple[int, int, int]:
    """Shape of the content layer's features for one ``size x size`` crop."""
    import tensorflow as tf

    from nst.lossnets import get_extractor

    extractor = get_extractor(config.network, [config.content_layer], config.pooling)
    out = extractor(tf.zeros([1, size, size, 3]))[config.content_layer]
    return tuple(int(d) for d in out.shape[1:])  # type: ignore[return-value]


def precompute(files: Sequence[str], needs_pillow: Sequence[bool], config: StyleConfig, size: int,
               root: str | os.PathLike[str], *, batch: int = 8, progress: bool = True,
               scale_side: int = 0) -> tuple[list[str], tuple[int, int, int], int]:
    """Make sure every photo has its cached feature; return ``(paths, shape, newly computed)``.

    ``scale_side``: the crops are cut from photos resized to it (:func:`trainer.data.fixed_crop`).
    """
    import tensorflow as tf
    from tqdm import tqdm

    from nst.lossnets import get_extractor
    from trainer.data import fixed_crop

    folder = cache_folder(root, config, size, scale_side)
    folder.mkdir(parents=True, exist_ok=True)
    shape = feature_shape(config, size)
    meta = {"network": config.network, "pooling": config.pooling, "layer": config.content_layer,
            "size": size, "scale_side": scale_side, "shape": list(shape), "dtype": FORMAT}
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        _write_atomic(meta_path, json.dumps(meta, indent=2).encode())
    paths = [str(folder / f"{feature_key(f)}.f16") for f in files]
    todo = [i for i, p in enumerate(paths) if not os.path.exists(p)]
    if not todo:
        return paths, shape, 0
    extractor = get_extractor(config.network, [config.content_layer], config.pooling)
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([files[i] for i in todo]), tf.constant([bool(needs_pillow[i]) for i in todo]), tf.constant(todo))
    )
    ds = ds.map(lambda p, s, i: (fixed_crop(p, s, size, scale_side), i), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors().batch(batch).prefetch(tf.data.AUTOTUNE)
    done = 0
    with tqdm(total=len(todo), desc="content features", unit="photo", disable=not progress, leave=False) as bar:
        for crops, idx in ds:
            feats = extractor(crops)[config.content_layer].numpy().astype(np.float16)
            for f, i in zip(feats, idx.numpy(), strict=True):
                _write_atomic(Path(paths[int(i)]), f.tobytes())
                done += 1
            bar.update(len(idx))
    missing = [files[i] for i, p in enumerate(paths) if not os.path.exists(p)]
    if missing:
        from trainer.data import DataError

        raise DataError(f"{missing[0]}: could not be decoded while precomputing features; remove it or run without --precompute")
    return paths, shape, done
