"""Pose and mesh error metrics: MPJPE, PA-MPJPE, PVE, acceleration error, and root alignment.

Every metric takes points ``[..., n, 3]`` and returns one error per sample ``[...]`` in the
units of its input (metres inside the project; multiply by 1000 for the mm of reports). None of
them aligns roots: call an ``align_*`` helper first, as each benchmark protocol prescribes. All are
pure ``jax.numpy``, batched over any leading shape, jittable, and keep float32 or float64.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

# ----------------------------------------------------------------------------- alignment


def _root_like(x: Array, root: Array) -> Array:
    return x - root[..., None, :]


def align_by_root(
    x: Float[ArrayLike, "... n 3"],
    root_index: int,
    reference: Float[ArrayLike, "... j 3"] | None = None,
) -> Float[Array, "... n 3"]:
    """Subtract the point ``root_index`` of ``reference`` (default: of ``x`` itself) from ``x``.

    ``reference`` lets vertices be shifted by a joint of the same body (AGORA, 3DPW PVE).
    """
    x = jnp.asarray(x)
    ref = x if reference is None else jnp.asarray(reference)
    return _root_like(x, ref[..., root_index, :])


def align_by_mid_hip(
    x: Float[ArrayLike, "... n 3"],
    left: int = 1,
    right: int = 2,
    reference: Float[ArrayLike, "... j 3"] | None = None,
) -> Float[Array, "... n 3"]:
    """Subtract the midpoint of points ``left`` and ``right`` of ``reference`` (default ``x``).

    Defaults are SMPL joints 1 (left_hip) and 2 (right_hip) as AGORA aligns its bodies
    (agora_evaluation/calculate_v2v_error.py: align_by_pelvis, left_id=1, right_id=2). For the
    LSP-14 set use ``left=3, right=2`` (VIBE lib/core/evaluate.py: pelvis = (j[2] + j[3]) / 2).
    """
    x = jnp.asarray(x)
    ref = x if reference is None else jnp.asarray(reference)
    return _root_like(x, 0.5 * (ref[..., left, :] + ref[..., right, :]))


def align_by_pelvis(
    x: Float[ArrayLike, "... n 3"],
    pelvis_index: int = 0,
    reference: Float[ArrayLike, "... j 3"] | None = None,
) -> Float[Array, "... n 3"]:
    """Subtract the pelvis joint (index 0 of both SMPL-24 and the H36M-17 regressor output).

    SPIN aligns 3DPW by the H36M-regressed pelvis, row 0 (SPIN eval.py: gt_pelvis = j17[:, 0]).
    """
    return align_by_root(x, pelvis_index, reference)


# ----------------------------------------------------------------------------- errors


def _point_dist(pred: Array, gt: Array) -> Array:
    return jnp.linalg.norm(jnp.asarray(pred) - jnp.asarray(gt), axis=-1)


def mpjpe(
    pred: Float[ArrayLike, "... n 3"],
    gt: Float[ArrayLike, "... n 3"],
    valid: Bool[ArrayLike, "... n"] | None = None,
) -> Float[Array, "..."]:
    """Mean per-joint position error: mean over joints of the Euclidean distance.

    (SPIN eval.py, VIBE lib/core/evaluate.py). With ``valid`` the mean runs over the valid joints
    only (0 when none are valid).
    """
    d = _point_dist(pred, gt)
    if valid is None:
        return jnp.mean(d, axis=-1)
    w = jnp.asarray(valid).astype(d.dtype)
    return jnp.sum(d * w, axis=-1) / jnp.maximum(jnp.sum(w, axis=-1), 1.0)


def pve(pred: Float[ArrayLike, "... v 3"], gt: Float[ArrayLike, "... v 3"]) -> Float[Array, "..."]:
    """Per-vertex error: mean over vertices of the Euclidean distance.

    (VIBE lib/utils/eval_utils.py: compute_error_verts; AGORA's MVE on its vertex subset.)
    """
    return jnp.mean(_point_dist(pred, gt), axis=-1)


def similarity_procrustes(
    pred: Float[ArrayLike, "... n 3"], gt: Float[ArrayLike, "... n 3"]
) -> Float[Array, "... n 3"]:
    """``pred`` moved by the similarity transform (s, R, t) that best fits it onto ``gt``.

    The formula of ``compute_similarity_transform`` (akanazawa/hmr; SPIN utils/pose_utils.py;
    PROTOCOLS.md section 4.2), written here in the row layout (points are rows):
    K = X1^T X2, svd K = U S V^T, Z = diag(1, 1, sign det(U V^T)) (the reflection fix, forcing
    det R = +1), R = V Z U^T, s = tr(R K) / |X1|^2, t = mu2 - s R mu1. A reflected target is thus
    fitted by a proper rotation, never by a mirror image. Undefined (NaN) when all points of
    ``pred`` coincide, as in the reference.
    """
    pred = jnp.asarray(pred)
    gt = jnp.asarray(gt)
    mu1 = jnp.mean(pred, axis=-2, keepdims=True)
    mu2 = jnp.mean(gt, axis=-2, keepdims=True)
    x1 = pred - mu1
    x2 = gt - mu2
    var1 = jnp.sum(x1**2, axis=(-2, -1))
    k = jnp.swapaxes(x1, -1, -2) @ x2  # [... 3 3], equals X1 @ X2.T of the 3xN layout
    u, _, vh = jnp.linalg.svd(k)
    v = jnp.swapaxes(vh, -1, -2)
    ut = jnp.swapaxes(u, -1, -2)
    # jnp.sign as numpy's np.sign in the reference: det(U V^T) is +-1 up to rounding.
    d = jnp.sign(jnp.linalg.det(u @ jnp.swapaxes(v, -1, -2)))
    z = jnp.ones((*d.shape, 3), dtype=pred.dtype).at[..., 2].set(d)
    r = v @ (z[..., :, None] * ut)  # V diag(z) U^T
    scale = jnp.trace(r @ k, axis1=-2, axis2=-1) / var1
    # Row layout: R @ p for a row p is p @ R^T.
    rt = jnp.swapaxes(r, -1, -2)
    t = mu2 - scale[..., None, None] * (mu1 @ rt)
    return scale[..., None, None] * (pred @ rt) + t


def pa_mpjpe(
    pred: Float[ArrayLike, "... n 3"], gt: Float[ArrayLike, "... n 3"]
) -> Float[Array, "..."]:
    """MPJPE after similarity Procrustes (SPIN eval.py: reconstruction_error)."""
    return mpjpe(similarity_procrustes(pred, gt), gt)


def accel_error(
    pred_seq: Float[ArrayLike, "... t n 3"],
    gt_seq: Float[ArrayLike, "... t n 3"],
    valid: Bool[ArrayLike, "... t"] | None = None,
) -> Float[Array, "... t_minus_2"]:
    """Acceleration error per frame: ``[..., t - 2]``, in input units per frame^2.

    VIBE lib/utils/eval_utils.py: compute_error_accel: accel = x[:-2] - 2 x[1:-1] + x[2:] (the
    second finite difference), error = mean over joints of ||accel_pred - accel_gt||. With
    ``valid`` [..., t], a difference touching any invalid frame is set to NaN (VIBE drops it);
    reduce with ``jnp.nanmean``.
    """
    p = jnp.asarray(pred_seq)
    g = jnp.asarray(gt_seq)

    def second_diff(x: Array) -> Array:
        return x[..., :-2, :, :] - 2.0 * x[..., 1:-1, :, :] + x[..., 2:, :, :]

    err = jnp.mean(_point_dist(second_diff(p), second_diff(g)), axis=-1)
    if valid is None:
        return err
    v = jnp.asarray(valid)
    ok = v[..., :-2] & v[..., 1:-1] & v[..., 2:]
    return jnp.where(ok, err, jnp.nan)


__all__ = [
    "accel_error",
    "align_by_mid_hip",
    "align_by_pelvis",
    "align_by_root",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "similarity_procrustes",
]
