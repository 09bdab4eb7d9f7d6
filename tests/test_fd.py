"""FD: masked shared component, projection, factor branches, decorrelation penalty."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.models.fd import FD, cross_correlation_penalty, masked_attention_pool


def test_pool_is_a_masked_softmax_and_empty_frames_give_zero():
    scores = jnp.asarray([[[1.0, 2.0, 50.0], [0.0, 0.0, 0.0]]])
    values = jnp.asarray(np.random.default_rng(0).normal(size=(1, 2, 3, 4)), jnp.float32)
    valid = jnp.asarray([[[True, True, False], [False, False, False]]])
    s = np.asarray(masked_attention_pool(scores, values, valid))
    w = np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum()
    np.testing.assert_allclose(s[0, 0], w @ np.asarray(values)[0, 0, :2], rtol=1e-5)
    np.testing.assert_array_equal(s[0, 1], 0.0)


def test_penalty_matches_numpy_correlation():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    b[:, 0] += 2 * a[:, 1]  # one strongly correlated pair
    w = np.ones(50, bool)
    w[40:] = False  # the padded rows must not count
    a[40:] += 100.0
    ref = np.corrcoef(a[:40].T, b[:40].T)[:3, 3:]
    got = float(cross_correlation_penalty(jnp.asarray(a), jnp.asarray(b), jnp.asarray(w)))
    np.testing.assert_allclose(got, np.mean(ref**2), rtol=1e-3)


def test_fd_padding_invariance_and_projection():
    fd = FD(8, 16, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(2)
    tok = jnp.asarray(rng.normal(size=(2, 2, 5, 8)), jnp.float32)
    valid = jnp.asarray(rng.uniform(size=(2, 2, 5)) > 0.3).at[..., 0].set(True)
    (p, s, c), decor = fd(tok, valid)
    tok2 = jnp.where(valid[..., None], tok, 1e3)
    (p2, s2, c2), decor2 = fd(tok2, valid)
    v = np.asarray(valid)
    for x, y in ((p, p2), (s, s2), (c, c2)):
        np.testing.assert_allclose(np.asarray(x)[v], np.asarray(y)[v], atol=1e-4)
    np.testing.assert_allclose(float(decor), float(decor2), rtol=1e-4)
    # The three branches see the same z = token - P s: with equal weights they would agree;
    # with independent initialisations they differ.
    assert not np.allclose(np.asarray(p), np.asarray(s))
    # When every valid token of a frame is the same vector u, the pooled scene component is u
    # whatever the pooling weights, and z = u - P u.
    u = jnp.asarray(rng.normal(size=(2, 2, 1, 8)), jnp.float32)
    same = jnp.where(valid[..., None], u, tok)
    np.testing.assert_allclose(
        np.asarray(fd.shared_component(same, valid)), np.asarray(u[:, :, 0]), atol=1e-5
    )
