"""Z-buffered mesh renderer in JAX (docs/data.md, "Renderer")."""

from siam_jax.render.raster import Raster, patch_size, project, rasterize
from siam_jax.render.shade import RenderOutput, render_meshes, vertex_normals

__all__ = ["Raster", "RenderOutput", "patch_size", "project", "rasterize", "render_meshes",
           "vertex_normals"]  # fmt: skip
