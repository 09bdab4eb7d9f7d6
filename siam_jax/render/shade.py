"""Mesh rendering: several meshes, Lambert shading (directional + ambient), background, maps."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from siam_jax.render.raster import _rasterize, plan


class RenderOutput(NamedTuple):
    image: Float[Array, "h w 3"]  # RGB in [0, 1]
    depth: Float[Array, "h w"]  # camera z, metres; +inf on background
    person: Int[Array, "h w"]  # mesh index, -1 on background
    part: Int[Array, "h w"]  # per-vertex part label of the nearest vertex of the hit, -1 bg
    alone: Array | None = None  # [n h w] bool silhouettes of each mesh alone (with_alone=True)


def vertex_normals(vertices: Float[Array, "n v 3"], faces: Int[Array, "f 3"]) -> Array:
    """Area-weighted vertex normals (sum of face cross products, normalised)."""
    v = vertices[:, faces]  # [n f 3 3]
    fn = jnp.cross(v[:, :, 1] - v[:, :, 0], v[:, :, 2] - v[:, :, 0])
    vn = jnp.zeros_like(vertices)
    for k in range(3):
        vn = vn.at[:, faces[:, k]].add(fn)
    return vn / jnp.maximum(jnp.linalg.norm(vn, axis=-1, keepdims=True), 1e-12)


def render_meshes(
    vertices: Float[Array, "n v 3"],
    faces: Int[Array, "f 3"],
    intrinsics: Float[Array, "3 3"],
    height: int,
    width: int,
    colors: Float[Array, "n 3"] | Float[Array, "n v 3"] | None = None,
    background: Float[Array, "h w 3"] | None = None,
    light_dir: tuple[float, float, float] = (0.3, 0.5, 1.0),
    ambient: float = 0.35,
    vertex_parts: Int[Array, " v"] | None = None,
    patch: int | None = None,
    with_alone: bool = False,
    min_patch: int = 1,
    cull_back_faces: bool = False,
) -> RenderOutput:
    """Render n meshes sharing `faces` (camera-frame vertices, metres) into an h x w image.

    light_dir points from the light into the scene (camera frame); shading is
    ambient + (1 - ambient) * max(0, -n.l) with two-sided normals. `patch` (the largest pixel
    patch of a triangle, static) is chosen from the projected triangle sizes when None, and
    every triangle gets at least `min_patch` (see raster.plan: a floor keeps the number of
    compiled variants small when rendering many scenes). The planning runs on the host in numpy
    (no device round trip), the rendering in one jitted program.

    `cull_back_faces`: skip the triangles facing away from the camera, about half the work.
    Only for closed meshes seen from outside (SMPL's), where the nearest surface along every
    ray is a front face, so the maps are those of the full render; each mesh's orientation
    (outward or inward winding) is read from the sign of its enclosed volume.
    """
    v_np = np.asarray(vertices, np.float32)
    faces_np = np.asarray(faces)
    K_np = np.asarray(intrinsics, np.float32)
    _check_geometry(v_np, faces_np, K_np)
    n, v, _ = v_np.shape
    f = faces_np.shape[0]
    tri = v_np[:, faces_np]  # [n f 3 3]
    keep = None
    if cull_back_faces:
        _check_closed(faces_np)
        keep = front_facing(tri).reshape(-1)
    layout, order = plan(tri.reshape(n * f, 3, 3), K_np, height, width, patch, min_patch, keep)
    colors = _check_colors(colors, n, v)
    background = _check_background(background, height, width)
    light = np.asarray(light_dir, np.float32)
    light = jnp.asarray(light / np.linalg.norm(light))
    vp = None if vertex_parts is None else jnp.asarray(vertex_parts, jnp.int32)
    return _render(jnp.asarray(v_np), jnp.asarray(faces_np, jnp.int32), jnp.asarray(K_np),
                   jnp.asarray(order), colors, background, light, jnp.float32(ambient), vp,
                   height, width, layout, f if with_alone else 0)  # fmt: skip


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def front_facing(tri: Float[np.ndarray, "n f 3 3"]) -> np.ndarray:
    """[n f] bool: triangles of closed meshes (camera frame) whose outer side faces the camera.

    A face's winding normal N = (b - a) x (c - a) points outward when the mesh's signed volume
    sum(a . (b x c)) / 6 (divergence theorem) is positive; the camera sits at the origin, so a
    face is seen from outside when N . a < 0 for an outward N.
    """
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    outward = np.sign(_dot(a, np.cross(b, c)).sum(-1, keepdims=True))  # [n 1]
    return _dot(np.cross(b - a, c - a), a) * outward < 0


_CLOSED: dict[int, int] = {}  # hash of a faces array -> its number of open edges


def _check_closed(faces_np: np.ndarray) -> None:
    """Back-face culling is exact only for closed meshes: every edge in an even number of faces
    (checked once per faces array)."""
    key = hash(faces_np.astype(np.int64).tobytes())
    if key not in _CLOSED:
        edges = np.sort(faces_np[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        _CLOSED[key] = int((counts % 2).sum())
    if _CLOSED[key]:
        raise ValueError(f"render_meshes: cull_back_faces needs closed meshes, but {_CLOSED[key]} "
                         "edges of faces belong to an odd number of faces")  # fmt: skip


def _check_geometry(vertices: np.ndarray, faces_np: np.ndarray, K: np.ndarray) -> None:
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"render_meshes: vertices must be [n v 3], got {vertices.shape}")
    if faces_np.ndim != 2 or faces_np.shape[1] != 3:
        raise ValueError(f"render_meshes: faces must be [f 3], got {faces_np.shape}")
    if faces_np.size and faces_np.max() >= vertices.shape[1]:
        raise ValueError("render_meshes: faces index past the vertex count")
    if K.shape != (3, 3):
        raise ValueError(f"render_meshes: intrinsics must be [3 3], got {K.shape}")


def _check_colors(colors, n: int, v: int) -> Array:
    """Per-mesh [n 3] or per-vertex [n v 3] colours; light grey when None."""
    if colors is None:
        return jnp.full((n, 3), 0.7, jnp.float32)
    colors = jnp.asarray(colors, jnp.float32)
    if colors.shape not in ((n, 3), (n, v, 3)):
        raise ValueError(f"render_meshes: colors must be [n 3] or [n v 3], got {colors.shape}")
    return colors


def _check_background(background, height: int, width: int) -> Array:
    if background is None:
        return jnp.zeros((height, width, 3), jnp.float32)
    background = jnp.asarray(background, jnp.float32)
    if background.shape != (height, width, 3):
        raise ValueError(f"render_meshes: background must be [{height} {width} 3], got "
                         f"{background.shape}")  # fmt: skip
    return background


@functools.partial(jax.jit, static_argnums=(9, 10, 11, 12))
def _render(vertices, faces_j, K, order, colors, background, light, ambient, vp, height, width,
            layout, group_size):  # fmt: skip
    n, f = vertices.shape[0], faces_j.shape[0]
    tri_cam = vertices[:, faces_j].reshape(n * f, 3, 3)
    r = _rasterize(tri_cam, K, order, height, width, layout, group_size)
    hit = r.tri >= 0
    sel = jnp.maximum(r.tri, 0)
    mesh = sel // f
    fidx = faces_j[sel % f]  # [h w 3]
    person = jnp.where(hit, mesh, -1)
    if colors.ndim == 2:  # per mesh [n 3]
        col = colors[mesh]
    else:  # per vertex [n v 3]
        col = jnp.sum(colors[mesh[..., None], fidx] * r.bary[..., None], axis=-2)
    normals = vertex_normals(vertices, faces_j)
    nrm = jnp.sum(normals[mesh[..., None], fidx] * r.bary[..., None], axis=-2)
    nrm = nrm / jnp.maximum(jnp.linalg.norm(nrm, axis=-1, keepdims=True), 1e-12)
    lam = jnp.abs(jnp.sum(nrm * light, -1))  # two-sided: winding-independent
    shade = ambient + (1.0 - ambient) * lam
    image = jnp.where(hit[..., None], jnp.clip(col * shade[..., None], 0, 1), background)
    if vp is None:
        part = jnp.where(hit, 0, -1)
    else:
        nearest = jnp.take_along_axis(fidx, jnp.argmax(r.bary, -1)[..., None], -1)[..., 0]
        part = jnp.where(hit, vp[nearest], -1)
    return RenderOutput(image=image, depth=r.depth, person=person, part=part, alone=r.alone)
