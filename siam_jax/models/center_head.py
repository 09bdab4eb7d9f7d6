"""Body-centre heatmap head (CenterNet style)."""

from __future__ import annotations

import jax
from flax import nnx
from jaxtyping import Array, Float

# CenterNet initialises the heatmap logit bias to -2.19 = -log((1 - 0.1) / 0.1), so the initial
# probability is 0.1 and the focal loss starts stable
# (xingyizhou/CenterNet: ctdet heads, fill_(-2.19)).
CENTER_BIAS_INIT = -2.19


class CenterHead(nnx.Module):
    """3x3 conv (d -> hidden) + ReLU, 1x1 conv -> one logit per cell; sigmoid probability."""

    def __init__(self, d: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
        self.conv = nnx.Conv(d, hidden, (3, 3), padding=((1, 1), (1, 1)), dtype=dtype, rngs=rngs)
        self.out = nnx.Conv(
            hidden,
            1,
            (1, 1),
            bias_init=nnx.initializers.constant(CENTER_BIAS_INIT),
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, features: Float[Array, "n h w d"]) -> Float[Array, "n h w"]:
        logits = self.out(nnx.relu(self.conv(features)))[..., 0]
        return jax.nn.sigmoid(logits.astype("float32"))
