"""The rotation benchmark maps pixels of np.rot90 copies back to the original exactly."""

from __future__ import annotations

import numpy as np
import pytest

from pose3d_tools.bench.rotation import unrotate


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_unrotate_inverts_rot90(k):
    img = np.zeros((5, 7), np.int32)
    img[1, 4] = 1  # (x, y) = (4, 1)
    rotated = np.rot90(img, k)
    ys, xs = np.nonzero(rotated)
    back = unrotate(np.array([[xs[0], ys[0]]], float), k, img.shape)
    assert np.allclose(back, [[4, 1]])
