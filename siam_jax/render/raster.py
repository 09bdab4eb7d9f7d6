"""Z-buffered triangle rasteriser in JAX (OpenCV camera, pixel centres at integer coordinates).

Design (CPU friendly, no per-pixel loop over all triangles): every triangle is evaluated on a
fixed P x P pixel patch anchored at the floor of its projected bounding box; P is the smallest
power of two covering the largest triangle's box (a static argument, chosen outside jit). Each
covered fragment (edge functions >= 0 at the pixel centre, perspective-correct depth) is
scattered into the z-buffer with a `min` scatter; a second scatter picks, per pixel, the triangle
whose fragment depth equals the buffer (ties -> highest triangle id, so the result is
deterministic). Attributes are then interpolated per pixel from the winning triangle only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

NEAR = 1e-3  # metres; triangles with a vertex closer than this are dropped (no clipping)


class Raster(NamedTuple):
    """Per-pixel rasterisation result."""

    tri: Int[Array, "h w"]  # winning triangle index into the flat triangle list, -1 = empty
    depth: Float[Array, "h w"]  # camera z (metres), +inf where empty
    bary: Float[Array, "h w 3"]  # perspective-correct barycentrics of the winning triangle
    alone: Array | None = None  # [g h w] bool: each group's own silhouette, ignoring the others


def project(
    points: Float[Array, "... 3"], intrinsics: Float[Array, "3 3"]
) -> Float[Array, "... 2"]:
    """Pinhole projection x = K X / Z (OpenCV: x right, y down, z forward)."""
    p = points @ jnp.asarray(intrinsics, points.dtype).T
    return p[..., :2] / p[..., 2:3]


def patch_size(
    tri_xy: np.ndarray, height: int, width: int, valid: np.ndarray | None = None
) -> int:
    """Smallest power of two >= the widest projected triangle bounding box (pixels, +1)."""
    tri_xy = np.asarray(tri_xy)
    ok = np.isfinite(tri_xy).all(axis=(-1, -2))
    if valid is not None:
        ok &= np.asarray(valid)
    if not ok.any():
        return 1
    lo = np.clip(np.floor(tri_xy.min(axis=1)), [0, 0], [width - 1, height - 1])
    hi = np.clip(np.ceil(tri_xy.max(axis=1)), [0, 0], [width - 1, height - 1])
    ext = int(np.max((hi - lo)[ok])) + 1
    return int(2 ** int(np.ceil(np.log2(max(ext, 1)))))


def rasterize(
    tri_cam: Float[Array, "t 3 3"],
    intrinsics: Float[Array, "3 3"],
    height: int,
    width: int,
    patch: int,
    group_size: int = 0,
) -> Raster:
    """Rasterise camera-frame triangles [t 3 3] into an h x w z-buffer (jit with static sizes).

    group_size > 0: triangles come in consecutive groups of that size (one mesh each) and
    `alone` holds every group's silhouette as if rendered by itself (one extra scatter into a
    [g h w] buffer instead of g separate renders).
    """
    return _rasterize(jnp.asarray(tri_cam, jnp.float32), jnp.asarray(intrinsics, jnp.float32),
                      height, width, patch, group_size)  # fmt: skip


@jax.jit(static_argnums=(2, 3, 4, 5))
def _rasterize(tri_cam, K, height, width, patch, group_size):
    t = tri_cam.shape[0]
    z = tri_cam[..., 2]  # [t 3]
    front = jnp.all(z > NEAR, axis=-1)
    zs = jnp.where(front[:, None], z, 1.0)
    xy = project(jnp.where(front[:, None, None], tri_cam, 1.0), K)  # [t 3 2]
    # Signed doubled area; both windings are drawn (no back-face culling: meshes are closed
    # and the z-buffer resolves visibility), so normalise edge functions by the area's sign.
    a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ok = front & (jnp.abs(area) > 1e-12)
    x0 = jnp.clip(jnp.floor(jnp.min(xy[..., 0], axis=1)), 0, width - 1).astype(jnp.int32)
    y0 = jnp.clip(jnp.floor(jnp.min(xy[..., 1], axis=1)), 0, height - 1).astype(jnp.int32)
    off = jnp.arange(patch, dtype=jnp.int32)
    px = x0[:, None, None] + off[None, None, :]  # [t 1 p]
    py = y0[:, None, None] + off[None, :, None]  # [t p 1]
    fx, fy = px.astype(jnp.float32), py.astype(jnp.float32)

    def edge(p, q):  # edge function of pixel (fx, fy) against directed edge p -> q
        return (q[:, 0, None, None] - p[:, 0, None, None]) * (fy - p[:, 1, None, None]) - (
            q[:, 1, None, None] - p[:, 1, None, None]
        ) * (fx - p[:, 0, None, None])

    inv = 1.0 / jnp.where(ok, area, 1.0)[:, None, None]
    w0 = edge(b, c) * inv  # weight of vertex a
    w1 = edge(c, a) * inv
    w2 = edge(a, b) * inv
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & ok[:, None, None]
    inside &= (px < width) & (py < height)
    # Perspective-correct depth: 1/z interpolates linearly in screen space.
    invz = w0 / zs[:, 0, None, None] + w1 / zs[:, 1, None, None] + w2 / zs[:, 2, None, None]
    depth = jnp.where(inside, 1.0 / invz, jnp.inf)
    flat = jnp.where(inside, py * width + px, height * width)  # out-of-range index -> dropped
    flat, depth = flat.reshape(-1), depth.reshape(-1)
    zbuf = jnp.full((height * width,), jnp.inf, jnp.float32).at[flat].min(depth, mode="drop")
    ids = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32)[:, None, None], inside.shape)
    win = jnp.where(depth <= zbuf.at[flat].get(mode="fill", fill_value=-jnp.inf),
                    ids.reshape(-1), -1)  # fmt: skip
    tri = jnp.full((height * width,), -1, jnp.int32).at[flat].max(win, mode="drop")
    tri = tri.reshape(height, width)
    # Barycentrics of the winner at each pixel centre, recomputed (cheap: h*w, not t*p*p).
    sel = jnp.maximum(tri, 0)
    txy, tz = xy[sel], zs[sel]  # [h w 3 2], [h w 3]
    gy, gx = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                          jnp.arange(width, dtype=jnp.float32), indexing="ij")  # fmt: skip
    A, B, C = txy[..., 0, :], txy[..., 1, :], txy[..., 2, :]

    def e(p, q):
        return (q[..., 0] - p[..., 0]) * (gy - p[..., 1]) - (q[..., 1] - p[..., 1]) * (gx - p[..., 0])

    ar = e(A, B) + e(B, C) + e(C, A)
    ar = jnp.where(jnp.abs(ar) > 1e-12, ar, 1.0)
    l = jnp.stack([e(B, C), e(C, A), e(A, B)], -1) / ar[..., None]  # screen-space barycentrics
    pc = l / tz
    pc = pc / jnp.sum(pc, -1, keepdims=True)  # perspective-correct
    empty = tri < 0
    bary = jnp.where(empty[..., None], 0.0, pc)
    alone = None
    if group_size:
        g = t // group_size
        gid = (ids // group_size).reshape(-1)
        gflat = jnp.where(flat < height * width, gid * (height * width) + flat, g * height * width)
        alone = jnp.zeros((g * height * width,), bool).at[gflat].set(True, mode="drop")
        alone = alone.reshape(g, height, width)
    depth_map = jnp.where(empty, jnp.inf, zbuf.reshape(height, width))
    return Raster(tri=tri, depth=depth_map, bary=bary, alone=alone)
