"""Instance tokens: where to read the feature map (GT cells or heatmap peaks) and the read itself.

Cells are (x, y) integer feature-cell indices at stride 8. A cell's pixel is the centre of its
receptive field, derived in closed form from the conv stack that makes the stride-8 map
(``receptive_field_centre`` over ``FEATURE_STACK``): with pixel centres at integers
(docs/architecture.md), output i of a conv (kernel k, stride s, padding p) is centred on input
position ``s i - p + (k - 1) / 2``; chained, cell c sits at ``8 c + CELL_CENTRE_OFFSET`` input
pixels. The 3x3 / stride-2 / pad-1 convs give ``s i`` exactly, so the offset is 0 (not the
``8c + 3.5`` of a cell that covered pixel edges [8c, 8c + 8)). siam_jax/data/targets.py assigns a
centre u to its nearest cell centre with the same value (``cell_of_pixel``), so targets and
predictions agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

# The convs between the input and the neck's stride-8 map F, as (kernel, stride, padding), in
# order: HRNet stem conv1, conv2 (siam_jax/models/hrnet.py: Conv(k=3, stride 2, padding k // 2),
# timm's stem), then the neck's stride-2 ``down`` conv (siam_jax/models/neck.py). Branch 1 of
# HRNet and the neck's 1x1 ``fuse`` are stride 1 / kernel 1 or 3 with "same" padding: they do
# not move the centre. tests/test_tokens.py checks these against the built modules.
FEATURE_STACK: tuple[tuple[int, int, int], ...] = ((3, 2, 1), (3, 2, 1), (3, 2, 1))


def receptive_field_centre(stack: tuple[tuple[int, int, int], ...]) -> tuple[int, float]:
    """``(stride, offset)`` of a conv stack: output cell c is centred on input ``stride c +
    offset`` (pixel centres at integers). Each layer maps i -> ``s i + (k - 1) / 2 - p`` in its
    input's coordinates; composing gives jump ``prod s`` and offset
    ``sum_l jump_{l-1} ((k_l - 1) / 2 - p_l)``."""
    jump, offset = 1, 0.0
    for k, s, p in stack:
        offset += jump * ((k - 1) / 2.0 - p)
        jump *= s
    return jump, offset


FEATURE_STRIDE, CELL_CENTRE_OFFSET = receptive_field_centre(FEATURE_STACK)
assert FEATURE_STRIDE == 8, "the neck's map F is at stride 8 (DESIGN.md)"


def cell_centers_px(
    cells: Int[Array, "... 2"], stride: int = FEATURE_STRIDE
) -> Float[Array, "... 2"]:
    """Pixel (u, v) of the receptive-field centre of each cell: cell * stride + offset."""
    return cells.astype(jnp.float32) * stride + CELL_CENTRE_OFFSET


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
