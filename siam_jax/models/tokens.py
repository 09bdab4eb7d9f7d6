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
) -> tuple[Int[Array, "n k 2"], Float[Array, "n k"], Bool[Array, "n k"]]:
    """The k highest 3x3-local maxima: cells (x, y) int32, heatmap scores and is-peak, best first.

    Non-peaks rank below every peak, so with fewer than k peaks the last slots hold non-peak
    cells, flagged ``False`` (the caller must not mark them valid whatever their score).
    """
    n, h, w = heatmap.shape
    if k > h * w:
        raise ValueError(f"max_instances={k} exceeds the {h}x{w} feature cells")
    peaks = peak_mask(heatmap).reshape(n, h * w)
    flat = heatmap.reshape(n, h * w)
    # heatmap in [0, 1]: peaks ranked by score + 2, so all peaks come before any non-peak.
    _, idx = jax.lax.top_k(jnp.where(peaks, flat + 2.0, flat), k)
    cells = jnp.stack([idx % w, idx // w], axis=-1).astype(jnp.int32)
    scores = jnp.take_along_axis(flat, idx, axis=1)
    return cells, scores, jnp.take_along_axis(peaks, idx, axis=1)


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
