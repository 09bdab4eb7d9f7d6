"""SIA's attention (``jax.nn.dot_product_attention``) against multi-head attention written out in
numpy from its definition (Vaswani et al. 2017, eq. 1: softmax(QK^T / sqrt(d_k)) V per head),
with a key-padding mask."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.models.sia import Attention, attention_masks


def _numpy_attention(attn: Attention, x, context, mask):
    def lin(layer, y):
        return y @ np.asarray(layer.kernel.get_value()) + np.asarray(layer.bias.get_value())

    n, q_len, d = x.shape
    h = attn.num_heads
    c = d // h
    q = lin(attn.q, x).reshape(n, q_len, h, c)
    k = lin(attn.k, context).reshape(n, -1, h, c)
    v = lin(attn.v, context).reshape(n, -1, h, c)
    out = np.zeros((n, q_len, h, c))
    for b in range(n):
        for head in range(h):
            logits = q[b, :, head] @ k[b, :, head].T / np.sqrt(c)  # [q s]
            logits = np.where(mask[b], logits, -np.inf)
            w = np.exp(logits - logits.max(-1, keepdims=True))
            w /= w.sum(-1, keepdims=True)
            out[b, :, head] = w @ v[b, :, head]
    return lin(attn.out, out.reshape(n, q_len, d))


def test_attention_matches_numpy_with_key_padding():
    rng = np.random.default_rng(0)
    attn = Attention(16, 4, rngs=nnx.Rngs(0))
    valid = rng.uniform(size=(2, 2, 3)) > 0.4  # n t k
    valid[:, :, 0] = True
    x = rng.normal(size=(2, 6, 16)).astype(np.float32)
    for name, mask in attention_masks(jnp.asarray(valid)).items():
        mask = np.asarray(mask)
        got = np.asarray(attn(jnp.asarray(x), jnp.asarray(x), jnp.asarray(mask)))
        want = _numpy_attention(attn, x.astype(np.float64), x.astype(np.float64), mask)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
    # no mask (scene cross-attention): every key counts
    ctx = rng.normal(size=(2, 5, 16)).astype(np.float32)
    got = np.asarray(attn(jnp.asarray(x), jnp.asarray(ctx)))
    want = _numpy_attention(
        attn, x.astype(np.float64), ctx.astype(np.float64), np.ones((2, 6, 5), bool)
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
