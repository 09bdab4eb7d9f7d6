"""Position embedding of a token's (x, y) and frame embedding of its index in the clip."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int


def fourier_features(xy: Float[Array, "... 2"], num_bands: int) -> Float[Array, "... f"]:
    """sin/cos of xy (in [0, 1]) at octave frequencies pi * 2^i (NeRF / Perceiver style)."""
    freqs = jnp.pi * (2.0 ** jnp.arange(num_bands, dtype=jnp.float32))
    ang = xy[..., :, None].astype(jnp.float32) * freqs  # [... 2 bands]
    feats = jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)
    return feats.reshape(*xy.shape[:-1], 4 * num_bands)


class PositionEmbedding(nnx.Module):
    """Learned linear map of Fourier features of the normalised (x, y) position to d.

    Positions are given in [0, 1] (cell centre / map size), so the same module embeds tokens and
    the coarse scene map's cells on one scale.
    """

    def __init__(self, d: int, *, num_bands: int = 8, rngs: nnx.Rngs, dtype=None):
        self.num_bands = num_bands
        self.proj = nnx.Linear(4 * num_bands, d, dtype=dtype, rngs=rngs)

    def __call__(self, xy: Float[Array, "... 2"]) -> Float[Array, "... d"]:
        return self.proj(fourier_features(xy, self.num_bands))


class FrameEmbedding(nnx.Module):
    """Learned embedding of the frame index inside the clip (rows 0..clip_len-1)."""

    def __init__(self, clip_len: int, d: int, *, rngs: nnx.Rngs):
        self.clip_len = clip_len
        self.table = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (clip_len, d)))

    def __call__(self, t: int) -> Float[Array, "t d"]:
        if t > self.clip_len:
            raise ValueError(
                f"clip has {t} frames but the model was built for clip_len {self.clip_len}"
            )
        return self.table[...][:t]


def normalised_cell_xy(cells: Int[Array, "... 2"], h: int, w: int) -> Float[Array, "... 2"]:
    """Cell (x, y) -> centre in [0, 1] of the map: ((x + 0.5) / w, (y + 0.5) / h)."""
    c = cells.astype(jnp.float32) + 0.5
    return c / jnp.asarray([w, h], jnp.float32)
