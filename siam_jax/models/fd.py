"""FD, Feature Decomposition: individual-specific pose / shape / camera features from SIA tokens.

Per frame, a shared scene component s is pooled from the valid tokens by masked attention
pooling and projected out of every token (z_i - P s, P learned); three factor branches then give
the features the pose, shape and camera regressors read. ``decorrelation`` is the mean squared
cross-correlation between the factors (per feature dimension, standardised over the valid tokens
of the batch, Barlow-Twins style off-diagonal-free cross terms), the term the loss keeps small so
the factors carry different information.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float


class FactorBranch(nnx.Module):
    """LayerNorm -> Linear(d, hidden) -> GELU -> Linear(hidden, d)."""

    def __init__(self, d: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
        self.norm = nnx.LayerNorm(d, rngs=rngs)
        self.fc1 = nnx.Linear(d, hidden, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, d, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.gelu(self.fc1(self.norm(x))))


def masked_attention_pool(
    scores: Float[Array, "n t k"], values: Float[Array, "n t k d"], valid: Bool[Array, "n t k"]
) -> Float[Array, "n t d"]:
    """Softmax over the valid slots of each frame; a frame with none pools to zeros."""
    logits = jnp.where(valid, scores.astype(jnp.float32), -jnp.inf)
    any_valid = valid.any(-1, keepdims=True)
    weights = jax.nn.softmax(jnp.where(any_valid, logits, 0.0), axis=-1)
    weights = jnp.where(valid, weights, 0.0).astype(values.dtype)
    return jnp.einsum("ntk,ntkd->ntd", weights, values)


def cross_correlation_penalty(
    a: Float[Array, "m d"], b: Float[Array, "m d"], weight: Float[Array, " m"]
) -> Float[Array, ""]:
    """Mean squared entry of the weighted cross-correlation matrix of a and b [d d]."""
    a = a.astype(jnp.float32)
    b = b.astype(jnp.float32)
    w = weight.astype(jnp.float32)[:, None]
    total = jnp.maximum(w.sum(), 1.0)

    def standardise(x):
        mean = (w * x).sum(0) / total
        var = (w * (x - mean) ** 2).sum(0) / total
        return (x - mean) * jax.lax.rsqrt(var + 1e-5)

    corr = (w * standardise(a)).T @ standardise(b) / total
    return jnp.mean(corr**2)


class FD(nnx.Module):
    """tokens [n t k d], valid -> (pose, shape, camera) features [n t k d] and decorrelation."""

    def __init__(self, d: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
        self.pool_norm = nnx.LayerNorm(d, rngs=rngs)
        self.pool_score = nnx.Linear(d, 1, dtype=dtype, rngs=rngs)
        self.project = nnx.Linear(d, d, use_bias=False, dtype=dtype, rngs=rngs)  # P
        self.pose = FactorBranch(d, hidden, rngs=rngs, dtype=dtype)
        self.shape = FactorBranch(d, hidden, rngs=rngs, dtype=dtype)
        self.camera = FactorBranch(d, hidden, rngs=rngs, dtype=dtype)

    def shared_component(
        self, tokens: Float[Array, "n t k d"], valid: Bool[Array, "n t k"]
    ) -> Float[Array, "n t d"]:
        scores = self.pool_score(self.pool_norm(tokens))[..., 0]
        return masked_attention_pool(scores, tokens, valid)

    def __call__(self, tokens: Float[Array, "n t k d"], valid: Bool[Array, "n t k"]):
        s = self.shared_component(tokens, valid)
        z = tokens - self.project(s)[:, :, None, :]
        feats = self.pose(z), self.shape(z), self.camera(z)
        d = tokens.shape[-1]
        flat = [f.reshape(-1, d) for f in feats]
        w = valid.reshape(-1)
        decor = (
            cross_correlation_penalty(flat[0], flat[1], w)
            + cross_correlation_penalty(flat[0], flat[2], w)
            + cross_correlation_penalty(flat[1], flat[2], w)
        ) / 3.0
        return feats, decor
