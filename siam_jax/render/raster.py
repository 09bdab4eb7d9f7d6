"""Z-buffered triangle rasteriser in JAX (OpenCV camera, pixel centres at integer coordinates).

Design (CPU friendly, no per-pixel loop over all triangles): every triangle is evaluated on a
P x P pixel patch anchored at the floor of its bounding box clipped to the image, P the smallest
size of a ladder (1, 2, 3, 4, 6, 8, 12, ...) covering that clipped box. The host (``plan``,
numpy) sorts the triangles by patch size and leaves out those behind the camera or wholly
outside the image (and, on request, back faces of closed meshes: shade.front_facing); the jitted
program runs one pass per patch size over its slice of that order, so the work follows the
triangles' box areas whatever their sizes (a mesh close to the camera, a person partly outside
the frame) instead of every triangle on the largest patch. Each covered fragment (edge
functions >= 0 at the pixel centre, perspective-correct depth) is scattered into the z-buffer
with a `min` scatter; a second scatter picks, per pixel, the triangle whose fragment depth
equals the buffer (ties -> highest triangle id, so the result is deterministic and does not
depend on the passes). Attributes are then interpolated per pixel from the winning triangle.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

NEAR = 1e-3  # metres; triangles with a vertex closer than this are dropped (no clipping)
# Pixels of slack on each side of a box: the host plans in numpy, the device rasterises with
# XLA; float32 rounding of the two projections differs by far less than this.
BOX_MARGIN = 1e-2
# A compiled layout is reused for a scene whose passes it covers while it costs at most this
# many times the scene's own layout (fragments): fewer compilations over a video or a dataset
# build, at a bounded extra cost.
REUSE_SLACK = 1.5

# Passes of one rasterisation: (patch size, end of its slice in the sorted order), patch sizes
# decreasing and slice ends increasing; a static argument of the jitted program.
Layout = tuple[tuple[int, int], ...]


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


def _pow2(x) -> np.ndarray:
    """The smallest power of two >= x (>= 1), elementwise."""
    x = np.maximum(np.asarray(x, np.float64), 1.0)
    return (2 ** np.ceil(np.log2(x))).astype(np.int64)


def ladder(x) -> np.ndarray:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (2^k and 3 2^(k-1)) >= x, elementwise:
    patch sizes and pass lengths on this ladder waste at most a third (powers of two: half)."""
    x = np.maximum(np.ceil(np.asarray(x, np.float64)), 1.0).astype(np.int64)
    p = (2 ** np.floor(np.log2(x))).astype(np.int64)  # the largest power of two <= x
    return np.where(x == p, p, np.where(2 * x <= 3 * p, 3 * p // 2, 2 * p))


def box_extents(
    tri_xy: Float[np.ndarray, "t 3 2"], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(extent [t], visible [t]): each box's side in pixels after clipping to the image (what
    a patch anchored at its clipped corner must cover) and whether it can reach a pixel centre."""
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]  # elementwise: far faster than a
    lo = np.floor(np.minimum(np.minimum(a, b), c) - BOX_MARGIN)  # reduce over the short axis
    hi = np.ceil(np.maximum(np.maximum(a, b), c) + BOX_MARGIN)
    limit = np.array([width - 1, height - 1], lo.dtype)
    visible = (hi >= 0) & (lo <= limit) & np.isfinite(lo) & np.isfinite(hi)
    visible = visible[:, 0] & visible[:, 1]
    ext = np.clip(hi, 0, limit) - np.clip(lo, 0, limit)
    return np.maximum(ext[:, 0], ext[:, 1]) + 1, visible


def patch_size(tri_xy: np.ndarray, height: int, width: int, valid: np.ndarray | None = None) -> int:
    """Smallest power of two >= the widest projected triangle bounding box (pixels, +1)."""
    tri_xy = np.asarray(tri_xy, np.float64)
    ext, ok = box_extents(np.where(np.isfinite(tri_xy), tri_xy, 0.0), height, width)
    ok &= np.isfinite(tri_xy).all(axis=(-1, -2))
    if valid is not None:
        ok &= np.asarray(valid)
    return int(_pow2(ext[ok].max())) if ok.any() else 1


def _front_xy(tri_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(in front of the camera [t], projected corners [t 3 2]), host-side in float32 as the
    device computes them."""
    tri_cam = np.asarray(tri_cam, np.float32)
    z = tri_cam[..., 2] > NEAR
    front = z[:, 0] & z[:, 1] & z[:, 2]
    x, y, z = np.moveaxis(np.where(front[:, None, None], tri_cam, np.float32(1.0)), -1, 0)
    K = np.asarray(K, np.float32)
    # K X written out (elementwise: a batched or threaded matmul of 3x3 blocks is far slower).
    w = K[2, 0] * x + K[2, 1] * y + K[2, 2] * z
    u = (K[0, 0] * x + K[0, 1] * y + K[0, 2] * z) / w
    v = (K[1, 0] * x + K[1, 1] * y + K[1, 2] * z) / w
    return front, np.stack([u, v], -1)


def plan(
    tri_cam: Float[np.ndarray, "t 3 3"],
    intrinsics: Float[np.ndarray, "3 3"],
    height: int,
    width: int,
    patch: int | None = None,
    min_patch: int = 1,
    keep: np.ndarray | None = None,
) -> tuple[Layout, np.ndarray]:
    """(layout, order [t] int32): the passes of one rasterisation and the triangle order they
    slice (largest patch first; triangles behind the camera, outside the image or not in
    ``keep`` [t] bool last, unused).

    Each triangle needs the ``ladder`` size covering its clipped box, at least ``min_patch`` (a
    floor merges the smallest passes: fewer compiled variants) and at most ``patch`` (default:
    the largest need). A pass ends at a ladder value of the cumulative count of triangles that
    need its patch or more (so scenes share compiled programs), and a layout compiled before is
    reused while it covers the scene at <= REUSE_SLACK its cost.
    """
    front, xy = _front_xy(tri_cam, intrinsics)
    ext, visible = box_extents(np.where(front[:, None, None], xy, 0.0), height, width)
    valid = front & visible
    if keep is not None:
        valid &= np.asarray(keep, bool)
    if not valid.any():
        return (), np.arange(len(valid), dtype=np.int32)
    floor = int(ladder(min_patch))
    top = int(ladder(patch if patch is not None else max(ext[valid].max(), floor)))
    need = np.where(valid, np.clip(ladder(ext), min(floor, top), top), 0)
    order = np.argsort(-need, kind="stable").astype(np.int32)
    sizes = sorted(set(ladder(np.arange(1, top + 1)).tolist()), reverse=True)  # top, ..., 1
    counts = [(p, int((need >= p).sum())) for p in sizes if (need == p).any()]
    return _reuse((len(valid), height, width), counts), order


def _ideal(counts: list[tuple[int, int]], t: int) -> Layout:
    layout, end = [], 0
    for p, n in counts:
        n = min(int(ladder(n)), t)
        if n > end:
            layout.append((p, n))
            end = n
    return tuple(layout)


def _cost(layout: Layout) -> int:
    start, cost = 0, 0
    for p, end in layout:
        cost, start = cost + (end - start) * p * p, end
    return cost


def _covers(layout: Layout, counts: list[tuple[int, int]]) -> bool:
    """Whether the first n triangles of the order get a patch >= p, for every (p, n)."""
    return all(max((e for q, e in layout if q >= p), default=0) >= n for p, n in counts)


_LAYOUTS: dict[tuple[int, int, int], list[Layout]] = {}
_LAYOUTS_LOCK = threading.Lock()


def _reuse(key: tuple[int, int, int], counts: list[tuple[int, int]]) -> Layout:
    ideal = _ideal(counts, key[0])
    with _LAYOUTS_LOCK:
        seen = _LAYOUTS.setdefault(key, [])
        fits = [x for x in seen if _covers(x, counts) and _cost(x) <= REUSE_SLACK * _cost(ideal)]
        if fits:
            return min(fits, key=_cost)
        seen.append(ideal)
        return ideal


def rasterize(
    tri_cam: Float[Array, "t 3 3"],
    intrinsics: Float[Array, "3 3"],
    height: int,
    width: int,
    patch: int | None = None,
    group_size: int = 0,
) -> Raster:
    """Rasterise camera-frame triangles [t 3 3] into an h x w z-buffer (jit with static sizes).

    group_size > 0: triangles come in consecutive groups of that size (one mesh each) and
    `alone` holds every group's silhouette as if rendered by itself (one extra scatter into a
    [g h w] buffer instead of g separate renders).
    """
    tri_np, K_np = np.asarray(tri_cam, np.float32), np.asarray(intrinsics, np.float32)
    layout, order = plan(tri_np, K_np, height, width, patch)
    return _rasterize(jnp.asarray(tri_np), jnp.asarray(K_np), jnp.asarray(order), height, width,
                      layout, group_size)  # fmt: skip


def _fragments(xy, zs, area, ok, ids, height, width, patch):
    """Covered pixels of triangles xy [t 3 2] on a patch x patch grid at each box's corner.

    Returns flat pixel index (h*w where not covered: dropped by the scatters), depth, triangle id.
    """
    a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
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

    # Both windings are drawn (no back-face culling: the z-buffer resolves visibility), so the
    # edge functions are normalised by the signed area.
    inv = 1.0 / jnp.where(ok, area, 1.0)[:, None, None]
    w0 = edge(b, c) * inv  # weight of vertex a
    w1 = edge(c, a) * inv
    w2 = edge(a, b) * inv
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & ok[:, None, None]
    inside &= (px < width) & (py < height)
    # Perspective-correct depth: 1/z interpolates linearly in screen space.
    invz = w0 / zs[:, 0, None, None] + w1 / zs[:, 1, None, None] + w2 / zs[:, 2, None, None]
    depth = jnp.where(inside, 1.0 / invz, jnp.inf)
    flat = jnp.where(inside, py * width + px, height * width)
    tid = jnp.broadcast_to(ids[:, None, None], inside.shape)
    return flat.reshape(-1), depth.reshape(-1), tid.reshape(-1)


@jax.jit(static_argnums=(3, 4, 5, 6))
def _rasterize(tri_cam, K, order, height, width, layout, group_size):
    t = tri_cam.shape[0]
    z = tri_cam[..., 2]  # [t 3]
    front = jnp.all(z > NEAR, axis=-1)
    zs = jnp.where(front[:, None], z, 1.0)
    xy = project(jnp.where(front[:, None, None], tri_cam, 1.0), K)  # [t 3 2]
    a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ok = front & (jnp.abs(area) > 1e-12)
    # One pass per patch size over its slice of the host's order (see ``plan``); a slice may
    # run past the triangles that need its patch into smaller ones (harmless: a larger patch
    # gives the same fragments). Each pass scatters on its own: concatenating the passes' fragments
    # first costs a copy of them all and about doubles the time on CPU.
    frags, start = [], 0
    for patch, end in layout:
        idx = order[start:end]
        frags.append(_fragments(xy[idx], zs[idx], area[idx], ok[idx], idx, height, width, patch))
        start = end
    zbuf = jnp.full((height * width,), jnp.inf, jnp.float32)
    for flat, depth, _ in frags:
        zbuf = zbuf.at[flat].min(depth, mode="drop")
    tri = jnp.full((height * width,), -1, jnp.int32)
    for flat, depth, tid in frags:
        win = jnp.where(depth <= zbuf.at[flat].get(mode="fill", fill_value=-jnp.inf), tid, -1)
        tri = tri.at[flat].max(win, mode="drop")
    tri = tri.reshape(height, width)
    # Barycentrics of the winner at each pixel centre, recomputed (cheap: h*w, not t*p*p).
    sel = jnp.maximum(tri, 0)
    txy, tz = xy[sel], zs[sel]  # [h w 3 2], [h w 3]
    gy, gx = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                          jnp.arange(width, dtype=jnp.float32), indexing="ij")  # fmt: skip
    A, B, C = txy[..., 0, :], txy[..., 1, :], txy[..., 2, :]

    def e(p, q):
        return (q[..., 0] - p[..., 0]) * (gy - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            gx - p[..., 0]
        )

    ar = e(A, B) + e(B, C) + e(C, A)
    ar = jnp.where(jnp.abs(ar) > 1e-12, ar, 1.0)
    lam = jnp.stack([e(B, C), e(C, A), e(A, B)], -1) / ar[..., None]  # screen-space barycentrics
    pc = lam / tz
    pc = pc / jnp.sum(pc, -1, keepdims=True)  # perspective-correct
    empty = tri < 0
    bary = jnp.where(empty[..., None], 0.0, pc)
    alone = None
    if group_size:
        g = t // group_size
        alone = jnp.zeros((g * height * width,), bool)
        for flat, _, tid in frags:
            gflat = jnp.where(flat < height * width, (tid // group_size) * (height * width) + flat,
                              g * height * width)  # fmt: skip
            alone = alone.at[gflat].set(True, mode="drop")
        alone = alone.reshape(g, height, width)
    depth_map = jnp.where(empty, jnp.inf, zbuf.reshape(height, width))
    return Raster(tri=tri, depth=depth_map, bary=bary, alone=alone)
