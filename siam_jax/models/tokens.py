"""Instance tokens: where to read the feature map (GT cells or heatmap peaks) and the read itself.

Cells are (x, y) integer feature-cell indices at stride 8. Cell c covers input pixel edges
[8c, 8c + 8), so its centre is pixel 8c + 3.5 with pixel centres at integers
(docs/architecture.md; siam_jax/data/targets.py uses c = floor((u + 0.5) / 8)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

FEATURE_STRIDE = 8  # neck output stride


def cell_centers_px(
    cells: Int[Array, "... 2"], stride: int = FEATURE_STRIDE
) -> Float[Array, "... 2"]:
    """Pixel (u, v) of the centre of each cell: cell * stride + (stride - 1) / 2."""
    return cells.astype(jnp.float32) * stride + (stride - 1) / 2.0


def peak_mask(heatmap: Float[Array, "n h w"]) -> Bool[Array, "n h w"]:
    """True where a cell is the maximum of its 3x3 neighbourhood (CenterNet's max-pool NMS)."""
    pooled = jax.lax.reduce_window(
        heatmap, -jnp.inf, jax.lax.max, (1, 3, 3), (1, 1, 1), ((0, 0), (1, 1), (1, 1))
    )
    return heatmap >= pooled


def topk_peaks(
    heatmap: Float[Array, "n h w"], k: int
) -> tuple[Int[Array, "n k 2"], Float[Array, "n k"]]:
    """The k highest 3x3-local maxima: cells (x, y) int32 and their scores, best first.

    Non-peaks get score -1 before top-k, so with fewer than k peaks the remaining slots hold
    score -1 cells (never valid for any threshold >= 0).
    """
    n, h, w = heatmap.shape
    if k > h * w:
        raise ValueError(f"max_instances={k} exceeds the {h}x{w} feature cells")
    scored = jnp.where(peak_mask(heatmap), heatmap, -1.0).reshape(n, h * w)
    scores, idx = jax.lax.top_k(scored, k)
    cells = jnp.stack([idx % w, idx // w], axis=-1).astype(jnp.int32)
    return cells, scores


def gather_cells(
    features: Float[Array, "n h w c"], cells: Int[Array, "n k 2"]
) -> Float[Array, "n k c"]:
    """features[n, y, x] for each (x, y) cell; cells are clipped into the map."""
    _, h, w, _ = features.shape
    x = jnp.clip(cells[..., 0], 0, w - 1)
    y = jnp.clip(cells[..., 1], 0, h - 1)
    return jax.vmap(lambda f, yy, xx: f[yy, xx])(features, y, x)


def gather_scores(
    heatmap: Float[Array, "n h w"], cells: Int[Array, "n k 2"]
) -> Float[Array, "n k"]:
    """Heatmap value at each cell (scores of teacher-forced tokens)."""
    return gather_cells(heatmap[..., None], cells)[..., 0]
