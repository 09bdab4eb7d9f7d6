"""Rotation conversions: axis-angle, rotation matrices and the SPIN/ROMP 6D layout.

All functions take any leading batch shape, are jit/vmap/grad safe and keep finite gradients at
the identity (the small-angle branches use Taylor series selected with the double-`where` trick,
so the unused branch never produces NaN cotangents).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

# Below this squared angle the Taylor branches are used (float32 cancels sin(t)/t beyond that).
_SMALL_SQ = 1e-6


def _skew(v: Float[Array, "... 3"]) -> Float[Array, "... 3 3"]:
    """Cross-product matrix K with K @ u = v x u."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack(
        [
            jnp.stack([zero, -z, y], axis=-1),
            jnp.stack([z, zero, -x], axis=-1),
            jnp.stack([-y, x, zero], axis=-1),
        ],
        axis=-2,
    )


def axis_angle_to_matrix(aa: Float[Array, "... 3"]) -> Float[Array, "... 3 3"]:
    """Rodrigues' formula R = I + sin(t)/t K + (1 - cos t)/t^2 K^2 with K = skew(aa).

    Same rotation as smplx/lbs.py: batch_rodrigues (which uses angle = |aa + 1e-8|); written with
    the un-normalised K so the small-angle limit is a smooth Taylor series.
    """
    aa = jnp.asarray(aa)
    t2 = jnp.sum(aa * aa, axis=-1)
    small = t2 < _SMALL_SQ
    t2_safe = jnp.where(small, 1.0, t2)
    t = jnp.sqrt(t2_safe)
    a = jnp.where(small, 1.0 - t2 / 6.0, jnp.sin(t) / t)
    b = jnp.where(small, 0.5 - t2 / 24.0, (1.0 - jnp.cos(t)) / t2_safe)
    k = _skew(aa)
    eye = jnp.eye(3, dtype=aa.dtype)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_quaternion(rot: Float[Array, "... 3 3"]) -> Float[Array, "... 4"]:
    """Unit quaternion (w, x, y, z), w >= 0, robust for every angle.

    Computes the four Shepperd candidates (each divides by the largest of 4w^2, 4x^2, 4y^2, 4z^2
    for its own row) and keeps the best-conditioned one, so angles near pi stay accurate.
    """
    rot = jnp.asarray(rot)
    m00, m01, m02 = rot[..., 0, 0], rot[..., 0, 1], rot[..., 0, 2]
    m10, m11, m12 = rot[..., 1, 0], rot[..., 1, 1], rot[..., 1, 2]
    m20, m21, m22 = rot[..., 2, 0], rot[..., 2, 1], rot[..., 2, 2]
    # 4 q_i^2 for each component (trace identities).
    sq = jnp.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        axis=-1,
    )
    # Row i is 4 q_i * q (unnormalised): pick the row whose pivot q_i is largest.
    cand = jnp.stack(
        [
            jnp.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], axis=-1),
            jnp.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], axis=-1),
            jnp.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], axis=-1),
            jnp.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], axis=-1),
        ],
        axis=-2,
    )
    best = jnp.argmax(sq, axis=-1)
    q = jnp.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    return jnp.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: Float[Array, "... 4"]) -> Float[Array, "... 3"]:
    """Axis-angle of a unit quaternion (w, x, y, z); angle in [0, pi] when w >= 0."""
    q = jnp.asarray(q)
    q = jnp.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    n2 = jnp.sum(v * v, axis=-1)
    small = n2 < _SMALL_SQ
    n = jnp.sqrt(jnp.where(small, 1.0, n2))
    # angle / |v| = 2 atan2(|v|, w) / |v|; Taylor for small |v|: 2/w (1 - n^2 / (3 w^2)).
    w_safe = jnp.where(small, w, 1.0)
    scale = jnp.where(
        small,
        2.0 / w_safe * (1.0 - n2 / (3.0 * w_safe * w_safe)),
        2.0 * jnp.arctan2(n, w) / n,
    )
    return v * scale[..., None]


def matrix_to_axis_angle(rot: Float[Array, "... 3 3"]) -> Float[Array, "... 3"]:
    """Axis-angle (angle in [0, pi]) of a rotation matrix, stable near 0 and near pi."""
    return quaternion_to_axis_angle(matrix_to_quaternion(rot))


def _normalize(x: Float[Array, "... 3"], eps: float = 1e-12) -> Float[Array, "... 3"]:
    # torch.nn.functional.normalize: x / max(|x|, eps) (SPIN:utils/geometry.py rot6d_to_rotmat).
    n = jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))
    return x / n


def rot6d_to_matrix(x: Float[Array, "... 6"]) -> Float[Array, "... 3 3"]:
    """SPIN/ROMP 6D -> rotation matrix.

    The 6-vector is a row-major 3x2 matrix (SPIN:utils/geometry.py rot6d_to_rotmat:
    `x.view(-1, 3, 2)`), i.e. a1 = x[0, 2, 4], a2 = x[1, 3, 5] are the first two columns of R;
    Gram-Schmidt gives b1, b2, and b3 = b1 x b2; R = [b1 b2 b3] as columns.
    """
    x = jnp.asarray(x)
    if x.shape[-1] != 6:
        raise ValueError(f"rot6d_to_matrix expects [..., 6], got shape {x.shape}")
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = _normalize(a1)
    b2 = _normalize(a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1)
    b3 = jnp.cross(b1, b2)
    return jnp.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(rot: Float[Array, "... 3 3"]) -> Float[Array, "... 6"]:
    """Rotation matrix -> SPIN/ROMP 6D: the first two columns, flattened row-major (3x2)."""
    rot = jnp.asarray(rot)
    return rot[..., :, :2].reshape(*rot.shape[:-2], 6)


__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "quaternion_to_axis_angle",
    "rot6d_to_matrix",
]
