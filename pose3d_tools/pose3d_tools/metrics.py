"""3D pose error metrics (numpy). Inputs are (..., J, 3) in one unit; outputs are in that unit.

* MPJPE (protocol 1): mean per-joint position error after root alignment (the poses passed in
  are expected root-relative already; set ``root=`` to align here).
* P-MPJPE (protocol 2): MPJPE after a similarity Procrustes alignment (rotation, uniform scale,
  translation) of the prediction to the ground truth, per pose.
* N-MPJPE: MPJPE after the optimal uniform scale only (Rhodin et al. 2018).
* MPJVE: mean per-joint velocity error along the time axis (axis -3): per-frame differences.
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must match and end with 3")
    return pred, gt


def _align_root(pred: np.ndarray, gt: np.ndarray, root: int | None):
    if root is None:
        return pred, gt
    return pred - pred[..., root : root + 1, :], gt - gt[..., root : root + 1, :]


def per_joint_error(pred: np.ndarray, gt: np.ndarray, root: int | None = None) -> np.ndarray:
    """Euclidean error of every joint (..., J)."""
    pred, gt = _align_root(*_check(pred, gt), root)
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = None) -> float:
    """Protocol 1: mean Euclidean joint error (after subtracting joint ``root`` if given)."""
    return float(per_joint_error(pred, gt, root).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align each pose of ``pred`` (..., J, 3) to ``gt`` (rotation, scale, shift)."""
    pred, gt = _check(pred, gt)
    mu_p = pred.mean(-2, keepdims=True)
    mu_g = gt.mean(-2, keepdims=True)
    p0 = pred - mu_p
    g0 = gt - mu_g
    norm_p = np.sqrt(np.square(p0).sum((-2, -1), keepdims=True))
    norm_g = np.sqrt(np.square(g0).sum((-2, -1), keepdims=True))
    norm_p = np.maximum(norm_p, 1e-12)
    norm_g = np.maximum(norm_g, 1e-12)
    p0 = p0 / norm_p
    g0 = g0 / norm_g
    h = np.swapaxes(g0, -1, -2) @ p0  # (..., 3, 3)
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    r = v @ np.swapaxes(u, -1, -2)
    # No reflections: flip the last singular vector where det(R) < 0.
    det = np.sign(np.linalg.det(r))
    v = v.copy()
    v[..., :, -1] *= det[..., None]
    s = s.copy()
    s[..., -1] *= det
    r = v @ np.swapaxes(u, -1, -2)
    tr = s.sum(-1)[..., None, None]
    a = tr * norm_g / norm_p
    t = mu_g - a * (mu_p @ r)
    return a * (pred @ r) + t


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 2: MPJPE after per-pose similarity Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt), gt)


def per_joint_p_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return per_joint_error(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = None) -> float:
    """MPJPE after scaling each prediction by the least-squares optimal factor."""
    pred, gt = _align_root(*_check(pred, gt), root)
    num = (pred * gt).sum((-2, -1), keepdims=True)
    den = np.maximum(np.square(pred).sum((-2, -1), keepdims=True), 1e-12)
    return mpjpe(pred * (num / den), gt)


def mpjve(pred: np.ndarray, gt: np.ndarray, root: int | None = None) -> float:
    """Mean per-joint velocity error: ``pred``/``gt`` are sequences (..., T, J, 3), T >= 2.

    Returns error per frame step in the input unit (multiply by the frame rate for unit/s).
    """
    pred, gt = _align_root(*_check(pred, gt), root)
    if pred.ndim < 3 or pred.shape[-3] < 2:
        raise ValueError("mpjve needs sequences (..., T >= 2, J, 3)")
    vp = np.diff(pred, axis=-3)
    vg = np.diff(gt, axis=-3)
    return float(np.linalg.norm(vp - vg, axis=-1).mean())


def summary(pred: np.ndarray, gt: np.ndarray, scale: float = 1000.0) -> dict[str, float]:
    """MPJPE / P-MPJPE / N-MPJPE of root-relative poses, multiplied by ``scale`` (m -> mm)."""
    return {
        "mpjpe": mpjpe(pred, gt) * scale,
        "p_mpjpe": p_mpjpe(pred, gt) * scale,
        "n_mpjpe": n_mpjpe(pred, gt) * scale,
    }
