"""Mesh rendering: several meshes, Lambert shading (directional + ambient), background, maps."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from siam_jax.render.raster import _rasterize, patch_size, plan, project


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
) -> RenderOutput:
    """Render n meshes sharing `faces` (camera-frame vertices, metres) into an h x w image.

    light_dir points from the light into the scene (camera frame); shading is
    ambient + (1 - ambient) * max(0, -n.l) with two-sided normals. `patch` (static per shape)
    is chosen from the projected triangle sizes when None (see raster.patch_size), at least
    `min_patch` (a floor keeps the number of compiled variants small when rendering many scenes).
    """
    vertices = jnp.asarray(vertices, jnp.float32)
    faces_np = np.asarray(faces)
    K = jnp.asarray(intrinsics, jnp.float32)
    _check_geometry(vertices, faces_np, K)
    n, v, _ = vertices.shape
    f = faces_np.shape[0]
    faces_j = jnp.asarray(faces_np, jnp.int32)
    tri_cam = vertices[:, faces_j].reshape(n * f, 3, 3)
    if patch is None:
        patch = max(_auto_patch(tri_cam, K, height, width), min_patch)
    colors = _check_colors(colors, n, v)
    background = _check_background(background, height, width)
    light = np.asarray(light_dir, np.float32)
    light = jnp.asarray(light / np.linalg.norm(light))
    vp = None if vertex_parts is None else jnp.asarray(vertex_parts, jnp.int32)
    sizes = plan(tri_cam, K, patch)
    return _render(vertices, faces_j, K, colors, background, light, jnp.float32(ambient), vp,
                   height, width, sizes, f if with_alone else 0)  # fmt: skip


def _check_geometry(vertices: Array, faces_np: np.ndarray, K: Array) -> None:
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"render_meshes: vertices must be [n v 3], got {vertices.shape}")
    if faces_np.ndim != 2 or faces_np.shape[1] != 3:
        raise ValueError(f"render_meshes: faces must be [f 3], got {faces_np.shape}")
    if faces_np.size and faces_np.max() >= vertices.shape[1]:
        raise ValueError("render_meshes: faces index past the vertex count")
    if K.shape != (3, 3):
        raise ValueError(f"render_meshes: intrinsics must be [3 3], got {K.shape}")


def _auto_patch(tri_cam: Array, K: Array, height: int, width: int) -> int:
    """raster.patch_size of the triangles in front of the camera (host-side, numpy)."""
    front = (np.asarray(tri_cam)[..., 2] > 1e-3).all(-1)
    xy = np.asarray(project(jnp.where(front[:, None, None], tri_cam, 1.0), K))
    return patch_size(xy, height, width, front)


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


@functools.partial(jax.jit, static_argnums=(8, 9, 10, 11))
def _render(vertices, faces_j, K, colors, background, light, ambient, vp, height, width, sizes,
            group_size):  # fmt: skip
    n, f = vertices.shape[0], faces_j.shape[0]
    tri_cam = vertices[:, faces_j].reshape(n * f, 3, 3)
    r = _rasterize(tri_cam, K, height, width, *sizes, group_size)
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
