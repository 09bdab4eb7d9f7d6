"""Camera: default intrinsics, predicted camera (s, tx, ty) -> translation, perspective projection.

Conventions (docs/architecture.md): OpenCV camera frame (x right, y down, z forward), pixel
centres at integers, K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].

``pred_cam = (s, tx, ty)`` is HMR's weak-perspective camera made *local to the token*: the
translation places the body on the ray through its token's centre pixel (u_c, v_c) at the depth
where the weak-perspective scale s holds, and (tx, ty) are small corrections in metres at that
depth (docs/choices.md):

    tz = 2 f / (s * input_size)                       (ROMP/BEV/4D-Humans cam -> transl)
    Tx = tx + (u_c - cx) tz / fx,   Ty = ty + (v_c - cy) tz / fy

With the default camera (cx = (size - 1) / 2) this equals the usual image-centred formula
Tx = tx + x_n / s with x_n = (u_c - cx) / (size / 2) the token's normalised position.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

MIN_SCALE = 1e-2  # floor on s: keeps depth positive and finite (SPIN adds 1e-9 for the same reason)
MIN_DEPTH = 1e-3  # metres, floor on z before dividing in the projection


def focal_from_fov(input_size: int, fov_degrees: float) -> float:
    """f = (size / 2) / tan(fov / 2): the focal length in pixels of a square input."""
    return (input_size / 2.0) / math.tan(math.radians(fov_degrees) / 2.0)


def default_intrinsics(input_size: int, fov_degrees: float) -> Float[Array, "3 3"]:
    f = focal_from_fov(input_size, fov_degrees)
    c = (input_size - 1) / 2.0  # image centre with pixel centres at integers
    return jnp.asarray([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], jnp.float32)


def cam_to_translation(
    pred_cam: Float[Array, "... 3"],
    centers_px: Float[Array, "... 2"],
    intrinsics: Float[Array, "... 3 3"],
    input_size: int,
) -> Float[Array, "... 3"]:
    """Camera-frame translation of the body from its local camera and its token centre."""
    fx, fy = intrinsics[..., 0, 0], intrinsics[..., 1, 1]
    cx, cy = intrinsics[..., 0, 2], intrinsics[..., 1, 2]
    f = 0.5 * (fx + fy)
    s = jnp.maximum(pred_cam[..., 0], MIN_SCALE)
    tz = 2.0 * f / (s * input_size)
    tx = pred_cam[..., 1] + (centers_px[..., 0] - cx) * tz / fx
    ty = pred_cam[..., 2] + (centers_px[..., 1] - cy) * tz / fy
    return jnp.stack([tx, ty, tz], axis=-1)


def perspective_projection(
    points: Float[Array, "... j 3"], intrinsics: Float[Array, "... 3 3"]
) -> Float[Array, "... j 2"]:
    """Pixels (u, v) = K (X / Z, Y / Z, 1); Z floored at MIN_DEPTH (points behind the camera)."""
    z = jnp.maximum(points[..., 2:3], MIN_DEPTH)
    xy1 = jnp.concatenate([points[..., :2] / z, jnp.ones_like(z)], axis=-1)
    uvw = jnp.einsum("...ij,...pj->...pi", intrinsics, xy1)
    return uvw[..., :2]
