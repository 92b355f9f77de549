"""Shared fixtures over :mod:`nst.testing`: the tiny random network and small synthetic pictures.

Mechanics tests use the ``tiny`` network (three random convolutions) and 32-64 px
images, so the whole suite stays fast on two CPU cores. Tests that need the real offline
``vgg16_hed`` weights are marked ``@pytest.mark.weights``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nst.config import StyleConfig
from nst.testing import TINY_CONFIG, synthetic_painting, synthetic_photo  # noqa: F401 - tests import them from here


@pytest.fixture
def tiny_config() -> StyleConfig:
    return TINY_CONFIG


@pytest.fixture
def photo() -> np.ndarray:
    return synthetic_photo(48)


@pytest.fixture
def painting() -> np.ndarray:
    return synthetic_painting(64)


@pytest.fixture
def painting_file(tmp_path, painting):
    from nst.images import save_image

    return save_image(tmp_path / "painting.png", painting)


@pytest.fixture
def photo_files(tmp_path):
    from nst.images import save_image

    folder = tmp_path / "photos"
    return [save_image(folder / f"p{i}.png", synthetic_photo(48, seed=i)) for i in range(2)]
