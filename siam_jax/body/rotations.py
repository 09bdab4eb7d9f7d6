"""Rotation conversions: axis-angle, rotation matrices and the SPIN/ROMP 6D layout.

The one implementation of these conversions in siam-jax, for the model (JAX) and for host code
(the input pipeline, the dataset builders, the mean parameters) alike: each function computes
with the array namespace of its input, ``jax.numpy`` for JAX arrays and tracers, ``numpy`` for
everything else (numpy arrays, lists, scalars), so host code gets numpy back at numpy speed and
never pays a JAX dispatch per example. Same formula, same branches in both.

All functions take any leading batch shape, are jit/vmap/grad safe and keep finite gradients at
the identity (the small-angle branches use Taylor series selected with the double-`where` trick,
so the unused branch never produces NaN cotangents).
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

# Below this squared angle the Taylor branches are used (float32 cancels sin(t)/t beyond that).
# In float64 the truncation error there is below 1e-13 relative (next terms t^4/120, n^4/5).
_SMALL_SQ = 1e-6

# Arrays these functions accept: JAX arrays (and tracers) or numpy arrays.
AnyArray = Array | np.ndarray


def _namespace(x) -> tuple[types.ModuleType, AnyArray]:
    """(``jax.numpy`` or ``numpy``, ``x`` as an array of that namespace); numpy integer input
    becomes float64 (the JAX path keeps its own promotion)."""
    if isinstance(x, jax.Array):  # tracers are jax.Array instances too
        return jnp, x
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return np, x


def _skew(xp, v: Float[AnyArray, "... 3"]) -> Float[AnyArray, "... 3 3"]:
    """Cross-product matrix K with K @ u = v x u."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = xp.zeros_like(x)
    return xp.stack(
        [
            xp.stack([zero, -z, y], axis=-1),
            xp.stack([z, zero, -x], axis=-1),
            xp.stack([-y, x, zero], axis=-1),
        ],
        axis=-2,
    )


def axis_angle_to_matrix(aa: Float[AnyArray, "... 3"]) -> Float[AnyArray, "... 3 3"]:
    """Rodrigues' formula R = I + sin(t)/t K + (1 - cos t)/t^2 K^2 with K = skew(aa).

    Same rotation as smplx/lbs.py: batch_rodrigues (which uses angle = |aa + 1e-8|); written with
    the un-normalised K so the small-angle limit is a smooth Taylor series.
    """
    xp, aa = _namespace(aa)
    t2 = xp.sum(aa * aa, axis=-1)
    small = t2 < _SMALL_SQ
    t2_safe = xp.where(small, 1.0, t2)
    t = xp.sqrt(t2_safe)
    a = xp.where(small, 1.0 - t2 / 6.0, xp.sin(t) / t)
    b = xp.where(small, 0.5 - t2 / 24.0, (1.0 - xp.cos(t)) / t2_safe)
    k = _skew(xp, aa)
    eye = xp.eye(3, dtype=aa.dtype)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_quaternion(rot: Float[AnyArray, "... 3 3"]) -> Float[AnyArray, "... 4"]:
    """Unit quaternion (w, x, y, z), w >= 0, robust for every angle.

    Computes the four Shepperd candidates (each divides by the largest of 4w^2, 4x^2, 4y^2, 4z^2
    for its own row) and keeps the best-conditioned one, so angles near pi stay accurate.
    """
    xp, rot = _namespace(rot)
    m00, m01, m02 = rot[..., 0, 0], rot[..., 0, 1], rot[..., 0, 2]
    m10, m11, m12 = rot[..., 1, 0], rot[..., 1, 1], rot[..., 1, 2]
    m20, m21, m22 = rot[..., 2, 0], rot[..., 2, 1], rot[..., 2, 2]
    # 4 q_i^2 for each component (trace identities).
    sq = xp.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        axis=-1,
    )
    # Row i is 4 q_i * q (unnormalised): pick the row whose pivot q_i is largest.
    cand = xp.stack(
        [
            xp.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], axis=-1),
            xp.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], axis=-1),
            xp.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], axis=-1),
            xp.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], axis=-1),
        ],
        axis=-2,
    )
    best = xp.argmax(sq, axis=-1)
    q = xp.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q = q / xp.linalg.norm(q, axis=-1, keepdims=True)
    return xp.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: Float[AnyArray, "... 4"]) -> Float[AnyArray, "... 3"]:
    """Axis-angle of a unit quaternion (w, x, y, z); angle in [0, pi] when w >= 0."""
    xp, q = _namespace(q)
    q = xp.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    n2 = xp.sum(v * v, axis=-1)
    small = n2 < _SMALL_SQ
    n = xp.sqrt(xp.where(small, 1.0, n2))
    # angle / |v| = 2 atan2(|v|, w) / |v|; Taylor for small |v|: 2/w (1 - n^2 / (3 w^2)).
    w_safe = xp.where(small, w, 1.0)
    scale = xp.where(
        small,
        2.0 / w_safe * (1.0 - n2 / (3.0 * w_safe * w_safe)),
        2.0 * xp.arctan2(n, w) / n,
    )
    return v * scale[..., None]


def matrix_to_axis_angle(rot: Float[AnyArray, "... 3 3"]) -> Float[AnyArray, "... 3"]:
    """Axis-angle (angle in [0, pi]) of a rotation matrix, stable near 0 and near pi."""
    return quaternion_to_axis_angle(matrix_to_quaternion(rot))


def _normalize(xp, x: Float[AnyArray, "... 3"], eps: float = 1e-12) -> Float[AnyArray, "... 3"]:
    # torch.nn.functional.normalize: x / max(|x|, eps) (SPIN:utils/geometry.py rot6d_to_rotmat).
    n = xp.sqrt(xp.maximum(xp.sum(x * x, axis=-1, keepdims=True), eps * eps))
    return x / n


def rot6d_to_matrix(x: Float[AnyArray, "... 6"]) -> Float[AnyArray, "... 3 3"]:
    """SPIN/ROMP 6D -> rotation matrix.

    The 6-vector is a row-major 3x2 matrix (SPIN:utils/geometry.py rot6d_to_rotmat:
    `x.view(-1, 3, 2)`), i.e. a1 = x[0, 2, 4], a2 = x[1, 3, 5] are the first two columns of R;
    Gram-Schmidt gives b1, b2, and b3 = b1 x b2; R = [b1 b2 b3] as columns.
    """
    xp, x = _namespace(x)
    if x.shape[-1] != 6:
        raise ValueError(f"rot6d_to_matrix expects [..., 6], got shape {x.shape}")
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = _normalize(xp, a1)
    b2 = _normalize(xp, a2 - xp.sum(b1 * a2, axis=-1, keepdims=True) * b1)
    b3 = xp.cross(b1, b2)
    return xp.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(rot: Float[AnyArray, "... 3 3"]) -> Float[AnyArray, "... 6"]:
    """Rotation matrix -> SPIN/ROMP 6D: the first two columns, flattened row-major (3x2)."""
    _, rot = _namespace(rot)
    return rot[..., :, :2].reshape(*rot.shape[:-2], 6)


__all__ = [
    "AnyArray",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "quaternion_to_axis_angle",
    "rot6d_to_matrix",
]
