"""SIA, Synchronous Interaction Attention: pre-norm transformer blocks over instance tokens.

Tokens of a clip [n t k d] are flattened to one sequence of t*k and each attention layer gets a
boolean mask [tk tk] built from the mode and the key-padding validity:

* ``synchronous``: every token attends to every valid token of the clip (space and time at once).
* ``spatial``: only to valid tokens of its own frame.
* ``factorized``: a spatial layer, then a temporal layer in which a token attends to the valid
  tokens of the *other* frames. Instance slots are not tracked identities at inference (top-k
  order changes between frames), so temporal attention cannot follow "slot i across frames";
  attending to all tokens of other frames is the identity-free choice (docs/choices.md).

Every query may also attend to itself, so a padded query whose frame holds no valid token still
has one key (no all-masked softmax row, no NaN); valid queries never see padded keys, which is
what makes outputs of valid tokens independent of the padding.

Optionally each block cross-attends from the tokens of a frame to that frame's coarse scene map
(the 1/32 HRNet branch projected to d, plus a position embedding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from siam_jax.models.embeddings import PositionEmbedding

MODES = ("synchronous", "factorized", "spatial")


class Attention(nnx.Module):
    """Multi-head attention with a boolean mask, through ``jax.nn.dot_product_attention`` (its
    softmax runs in float32, stable under bf16; ``implementation=None`` lets JAX pick cuDNN's
    fused kernel on GPU where it applies and XLA elsewhere)."""

    def __init__(self, d: int, num_heads: int, *, rngs: nnx.Rngs, dtype=None):
        if d % num_heads:
            raise ValueError(f"token width {d} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nnx.Linear(d, d, dtype=dtype, rngs=rngs)
        self.k = nnx.Linear(d, d, dtype=dtype, rngs=rngs)
        self.v = nnx.Linear(d, d, dtype=dtype, rngs=rngs)
        self.out = nnx.Linear(d, d, dtype=dtype, rngs=rngs)

    def __call__(
        self,
        x: Float[Array, "n q d"],
        context: Float[Array, "n s d"],
        mask: Bool[Array, "n q s"] | None = None,
    ) -> Float[Array, "n q d"]:
        n, q_len, d = x.shape
        h = self.num_heads

        def heads(y):  # [n l d] -> [n l h d/h], the layout dot_product_attention takes
            return y.reshape(*y.shape[:2], h, d // h)

        q, k, v = heads(self.q(x)), heads(self.k(context)), heads(self.v(context))
        # scale defaults to 1/sqrt(d/h); the mask broadcasts over heads ([n 1 q s])
        y = jax.nn.dot_product_attention(q, k, v, mask=None if mask is None else mask[:, None])
        return self.out(y.reshape(n, q_len, d))


class Mlp(nnx.Module):
    def __init__(self, d: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
        self.fc1 = nnx.Linear(d, hidden, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, d, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.gelu(self.fc1(x)))


def attention_masks(valid: Bool[Array, "n t k"]) -> dict[str, Bool[Array, "n tk tk"]]:
    """The three structural masks over the flattened clip, combined with key validity."""
    n, t, k = valid.shape
    frame = jnp.repeat(jnp.arange(t), k)  # frame index of each flattened token
    same_frame = frame[:, None] == frame[None, :]
    key_valid = valid.reshape(n, 1, t * k)
    eye = jnp.eye(t * k, dtype=bool)[None]
    return {
        "synchronous": key_valid | eye,
        "spatial": (key_valid & same_frame[None]) | eye,
        "temporal": (key_valid & ~same_frame[None]) | eye,
    }


class SIABlock(nnx.Module):
    """Pre-norm block: self-attention (1-2 layers by mode), optional scene cross-attention, MLP."""

    def __init__(self, d, num_heads, mlp_ratio, mode, cross, dropout, *, rngs, dtype=None):
        self.mode = mode
        self.norm1 = nnx.LayerNorm(d, rngs=rngs)
        self.attn = Attention(d, num_heads, rngs=rngs, dtype=dtype)
        if mode == "factorized":
            self.norm_t = nnx.LayerNorm(d, rngs=rngs)
            self.attn_t = Attention(d, num_heads, rngs=rngs, dtype=dtype)
        if cross:
            self.norm_x = nnx.LayerNorm(d, rngs=rngs)
            self.xattn = Attention(d, num_heads, rngs=rngs, dtype=dtype)
        self.cross = cross
        self.norm2 = nnx.LayerNorm(d, rngs=rngs)
        self.mlp = Mlp(d, int(d * mlp_ratio), rngs=rngs, dtype=dtype)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, masks, scene, t):
        n, tk, d = x.shape
        first = "synchronous" if self.mode == "synchronous" else "spatial"
        y = self.norm1(x)
        x = x + self.drop(self.attn(y, y, masks[first]))
        if self.mode == "factorized":
            y = self.norm_t(x)
            x = x + self.drop(self.attn_t(y, y, masks["temporal"]))
        if self.cross:
            # Per frame: tokens of frame i attend to frame i's scene cells.
            y = self.norm_x(x).reshape(n * t, tk // t, d)
            x = x + self.drop(self.xattn(y, scene).reshape(n, tk, d))
        return x + self.drop(self.mlp(self.norm2(x)))


class SceneContext(nnx.Module):
    """Coarse scene map (1/32 branch) -> per-frame keys [n*t s d] for cross-attention."""

    def __init__(self, in_ch: int, d: int, *, rngs: nnx.Rngs, dtype=None):
        self.proj = nnx.Linear(in_ch, d, dtype=dtype, rngs=rngs)
        self.pos = PositionEmbedding(d, rngs=rngs, dtype=dtype)
        self.norm = nnx.LayerNorm(d, rngs=rngs)

    def __call__(self, scene_map: Float[Array, "n hs ws c"]) -> Float[Array, "n s d"]:
        n, hs, ws, _ = scene_map.shape
        ys, xs = jnp.meshgrid(jnp.arange(hs), jnp.arange(ws), indexing="ij")
        xy = (jnp.stack([xs, ys], -1).astype(jnp.float32) + 0.5) / jnp.asarray([ws, hs])
        x = self.proj(scene_map) + self.pos(xy)[None].astype(scene_map.dtype)
        return self.norm(x).reshape(n, hs * ws, -1)


class SIA(nnx.Module):
    """L SIA blocks and a final LayerNorm: [n t k d] -> [n t k d], interaction-aware tokens."""

    def __init__(
        self,
        d: int,
        *,
        num_layers: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        mode: str = "synchronous",
        scene_channels: int | None = None,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
        dtype=None,
    ):
        if mode not in MODES:
            raise ValueError(f"config.model.sia.mode must be one of {MODES}, got {mode!r}")
        cross = scene_channels is not None
        self.scene = SceneContext(scene_channels, d, rngs=rngs, dtype=dtype) if cross else None
        self.blocks = nnx.List(
            [
                SIABlock(d, num_heads, mlp_ratio, mode, cross, dropout, rngs=rngs, dtype=dtype)
                for _ in range(num_layers)
            ]
        )
        self.norm = nnx.LayerNorm(d, rngs=rngs)

    def __call__(
        self,
        tokens: Float[Array, "n t k d"],
        valid: Bool[Array, "n t k"],
        scene_map: Float[Array, "n t hs ws c"] | None = None,
    ) -> Float[Array, "n t k d"]:
        n, t, k, d = tokens.shape
        if valid.shape != (n, t, k):
            raise ValueError(f"valid has shape {valid.shape}, tokens {tokens.shape}")
        scene = None
        if self.scene is not None:
            if scene_map is None:
                raise ValueError("SIA was built with scene cross-attention but got no scene_map")
            scene = self.scene(scene_map.reshape(n * t, *scene_map.shape[2:]))
        masks = attention_masks(valid)
        x = tokens.reshape(n, t * k, d)
        for block in self.blocks:
            x = block(x, masks, scene, t)
        return self.norm(x).reshape(n, t, k, d)
