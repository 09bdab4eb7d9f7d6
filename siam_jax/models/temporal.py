"""The temporal path of the video Base and Base+FD rows: tokens exchange information across the
frames of the window without SIA (docs/choices.md "Temporal path without SIA").

One pre-norm residual block: temporal-only attention (each token attends to the valid tokens of
the *other* frames of the window, and to itself), then an MLP. It never attends to the other
people of its own frame, so it carries motion and appearance over time but none of SIA's
person-person interaction, and no scene cross-attention. Instance slots are not identities
(top-k order changes between frames), so it attends to every token of the other frames, and the
tokens' position embeddings let it find the same person nearby (as SIA's factorized temporal
layer, docs/choices.md). Padded tokens are never keys, so outputs of valid tokens do not depend
on padding (the streaming cache relies on it for its warm-up frames).
"""

from __future__ import annotations

from flax import nnx
from jaxtyping import Array, Bool, Float

from siam_jax.models.sia import Attention, Mlp, attention_masks


class TemporalMixer(nnx.Module):
    """[n t k d] tokens, valid [n t k] -> [n t k d], each token mixed with the other frames'."""

    def __init__(self, d: int, *, num_heads: int, mlp_ratio: float, rngs: nnx.Rngs, dtype=None):
        self.norm1 = nnx.LayerNorm(d, rngs=rngs)
        self.attn = Attention(d, num_heads, rngs=rngs, dtype=dtype)
        self.norm2 = nnx.LayerNorm(d, rngs=rngs)
        self.mlp = Mlp(d, int(d * mlp_ratio), rngs=rngs, dtype=dtype)

    def __call__(
        self, tokens: Float[Array, "n t k d"], valid: Bool[Array, "n t k"]
    ) -> Float[Array, "n t k d"]:
        n, t, k, d = tokens.shape
        if valid.shape != (n, t, k):
            raise ValueError(f"valid has shape {valid.shape}, tokens {tokens.shape}")
        mask = attention_masks(valid)["temporal"]
        x = tokens.reshape(n, t * k, d)
        y = self.norm1(x)
        x = x + self.attn(y, y, mask)
        x = x + self.mlp(self.norm2(x))
        return x.reshape(n, t, k, d)
