"""SIA: masks, padding invariance, slot permutation equivariance, mode structure."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from siam_jax.models.sia import SIA, attention_masks

D = 16


def _sia(mode, cross=False, seed=0):
    return SIA(
        D,
        num_layers=2,
        num_heads=4,
        mlp_ratio=2.0,
        mode=mode,
        scene_channels=8 if cross else None,
        rngs=nnx.Rngs(seed),
    )


def _inputs(n=2, t=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    tok = jnp.asarray(rng.normal(size=(n, t, k, D)), jnp.float32)
    valid = jnp.asarray(rng.uniform(size=(n, t, k)) > 0.4)
    valid = valid.at[:, :, 0].set(True)
    scene = jnp.asarray(rng.normal(size=(n, t, 2, 2, 8)), jnp.float32)
    return tok, valid, scene


def test_masks_structure():
    valid = jnp.asarray([[[True, False], [True, True]]])  # t=2, k=2
    m = {k: np.asarray(v[0]) for k, v in attention_masks(valid).items()}
    # key 1 (frame 0, slot 1) is padding: nobody but itself sees it
    assert not m["synchronous"][[0, 2, 3], 1].any() and m["synchronous"][1, 1]
    assert m["spatial"][0, 0] and not m["spatial"][0, 2] and not m["spatial"][2, 0]
    assert m["temporal"][0, 2] and m["temporal"][0, 3] and not m["temporal"][2, 3]
    assert m["temporal"][2, 2]  # self is always allowed


@pytest.mark.parametrize("mode", ["synchronous", "factorized", "spatial"])
def test_padding_invariance(mode):
    model = _sia(mode, cross=True)
    tok, valid, scene = _inputs()
    out = model(tok, valid, scene)
    noise = jax.random.normal(jax.random.key(1), tok.shape) * 10
    out2 = model(jnp.where(valid[..., None], tok, noise), valid, scene)
    v = np.asarray(valid)
    np.testing.assert_allclose(np.asarray(out)[v], np.asarray(out2)[v], atol=1e-5)
    assert np.isfinite(np.asarray(out2)).all()


@pytest.mark.parametrize("mode", ["synchronous", "factorized"])
def test_slot_permutation_equivariance(mode):
    model = _sia(mode, cross=True)
    tok, valid, scene = _inputs()
    perm = np.array([2, 0, 3, 1])
    out = model(tok, valid, scene)
    out_p = model(tok[:, :, perm], valid[:, :, perm], scene)
    np.testing.assert_allclose(np.asarray(out)[:, :, perm], np.asarray(out_p), atol=1e-5)


def test_modes_agree_on_one_frame():
    tok, valid, _scene = _inputs(t=1)
    outs = []
    for mode in ("synchronous", "spatial"):
        outs.append(np.asarray(_sia(mode, seed=3)(tok, valid)))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)


def test_spatial_mode_does_not_look_across_frames_and_synchronous_does():
    tok, valid, _ = _inputs()
    # change every frame but the first (a random change: a constant one is erased by LayerNorm)
    tok2 = tok.at[:, 1:].add(jax.random.normal(jax.random.key(5), tok[:, 1:].shape))
    for mode, crosses in (("spatial", False), ("synchronous", True), ("factorized", True)):
        model = _sia(mode)
        a, b = np.asarray(model(tok, valid)[:, 0]), np.asarray(model(tok2, valid)[:, 0])
        v = np.asarray(valid[:, 0])
        assert np.allclose(a[v], b[v], atol=1e-6) != crosses, mode


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match=r"sia\.mode"):
        _sia("bogus")
