"""siam_jax.evaluation.metrics: closed forms, invariants and an independent numpy Procrustes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siam_jax.evaluation import metrics


def _numpy_procrustes(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Reference written from the formula of PROTOCOLS.md 4.2 in the 3xN layout, float64."""
    s1 = s1.T.astype(np.float64)
    s2 = s2.T.astype(np.float64)
    mu1 = s1.mean(axis=1, keepdims=True)
    mu2 = s2.mean(axis=1, keepdims=True)
    x1, x2 = s1 - mu1, s2 - mu2
    var1 = np.sum(x1**2)
    k = x1 @ x2.T
    u, _, vh = np.linalg.svd(k)
    v = vh.T
    z = np.eye(3)
    z[2, 2] *= np.sign(np.linalg.det(u @ v.T))
    r = v @ z @ u.T
    scale = np.trace(r @ k) / var1
    t = mu2 - scale * (r @ mu1)
    return (scale * r @ s1 + t).T


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def test_mpjpe_pve_closed_form():
    gt = np.zeros((2, 4, 3), np.float32)
    pred = gt.copy()
    pred[0, :, 0] = 3.0  # every joint 3 away
    pred[1, 0] = [3.0, 4.0, 0.0]  # one joint 5 away, others 0 -> mean 1.25
    np.testing.assert_allclose(metrics.mpjpe(pred, gt), [3.0, 1.25], rtol=1e-6)
    np.testing.assert_allclose(metrics.pve(pred, gt), [3.0, 1.25], rtol=1e-6)
    valid = np.array([[True] * 4, [True, True, False, False]])
    np.testing.assert_allclose(metrics.mpjpe(pred, gt, valid), [3.0, 2.5], rtol=1e-6)
    # no root alignment inside: a pure translation is an error
    assert float(metrics.mpjpe(gt[0] + 1.0, gt[0])) == pytest.approx(np.sqrt(3.0), rel=1e-6)


def test_alignment_helpers():
    x = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    np.testing.assert_allclose(metrics.align_by_root(x, 3), x - x[3])
    np.testing.assert_allclose(metrics.align_by_pelvis(x), x - x[0])
    np.testing.assert_allclose(metrics.align_by_mid_hip(x), x - 0.5 * (x[1] + x[2]))
    verts = np.ones((7, 3), np.float32)
    np.testing.assert_allclose(
        metrics.align_by_mid_hip(verts, 3, 2, reference=x), verts - 0.5 * (x[3] + x[2])
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.05, 20.0),
    n=st.integers(4, 30),
)
def test_pa_mpjpe_recovers_similarity(seed, scale, n):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(n, 3))
    r = _random_rotation(rng)
    t = rng.normal(size=3) * 5.0
    gt = scale * pred @ r.T + t
    with jax.enable_x64(True):
        err = float(metrics.pa_mpjpe(jnp.asarray(pred), jnp.asarray(gt)))
        aligned = np.asarray(metrics.similarity_procrustes(jnp.asarray(pred), jnp.asarray(gt)))
    assert err < 1e-8 * max(1.0, scale)
    np.testing.assert_allclose(aligned, gt, atol=1e-8 * max(1.0, scale))
    # and in float32 the error is at rounding level
    err32 = float(metrics.pa_mpjpe(pred.astype(np.float32), gt.astype(np.float32)))
    assert err32 < 1e-4 * max(1.0, scale) * (1 + np.abs(t).max())


def test_pa_matches_numpy_reference_batched_float64_and_float32():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(6, 14, 3))
    gt = pred + 0.3 * rng.normal(size=(6, 14, 3))
    ref = np.stack([_numpy_procrustes(p, g) for p, g in zip(pred, gt, strict=True)])
    ref_err = np.linalg.norm(ref - gt, axis=-1).mean(-1)
    with jax.enable_x64(True):
        out = metrics.similarity_procrustes(jnp.asarray(pred), jnp.asarray(gt))
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out), ref, atol=1e-12)
        np.testing.assert_allclose(
            np.asarray(metrics.pa_mpjpe(jnp.asarray(pred), jnp.asarray(gt))), ref_err, rtol=1e-12
        )
    out32 = jax.jit(metrics.pa_mpjpe)(pred.astype(np.float32), gt.astype(np.float32))
    assert out32.dtype == jnp.float32 and out32.shape == (6,)
    np.testing.assert_allclose(np.asarray(out32), ref_err, rtol=1e-4)


def test_pa_reflected_target_uses_a_proper_rotation():
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(10, 3))
    gt = pred * np.array([-1.0, 1.0, 1.0])  # mirror image: no proper rotation maps one on the other
    with jax.enable_x64(True):
        aligned = np.asarray(metrics.similarity_procrustes(jnp.asarray(pred), jnp.asarray(gt)))
    np.testing.assert_allclose(aligned, _numpy_procrustes(pred, gt), atol=1e-12)
    # Recover the linear part aligned = pred @ A + c; it must be s R with det > 0, not a mirror.
    pc = pred - pred.mean(0)
    a = np.linalg.lstsq(pc, aligned - aligned.mean(0), rcond=None)[0]
    assert np.linalg.det(a) > 0
    s = np.cbrt(np.linalg.det(a))
    np.testing.assert_allclose(a.T @ a / s**2, np.eye(3), atol=1e-10)
    # so the error stays positive for a chiral point set
    assert float(np.linalg.norm(aligned - gt, axis=-1).mean()) > 1e-2


def test_accel_error_closed_form():
    t = np.arange(6, dtype=np.float64)
    gt = np.zeros((6, 2, 3))
    pred = np.zeros((6, 2, 3))
    pred[:, :, 0] = 0.5 * t[:, None] ** 2  # constant acceleration 1 along x -> error 1 per frame
    err = metrics.accel_error(pred, gt)
    assert err.shape == (4,)
    np.testing.assert_allclose(err, 1.0, rtol=1e-6)
    # uniform motion has no acceleration
    lin = np.zeros((6, 2, 3))
    lin[:, :, 1] = 3.0 * t[:, None]
    np.testing.assert_allclose(metrics.accel_error(lin, gt), 0.0, atol=1e-5)
    valid = np.array([True, True, True, False, True, True])
    e = np.asarray(metrics.accel_error(pred, gt, valid))
    # windows (0,1,2) ok; (1,2,3), (2,3,4), (3,4,5) touch frame 3
    assert e[0] == pytest.approx(1.0) and np.isnan(e[1:]).all()


def test_accel_error_of_a_known_jitter_and_a_track():
    """A GT moving at constant velocity and a prediction equal to it plus a +-e jitter on one of
    J joints: the jitter's second difference is e (1 + 2 + 1) = 4e, so the error is 4e / J per
    frame; the constant-velocity prediction itself scores 0."""
    from siam_jax.evaluation import pw3d

    t = np.arange(7, dtype=np.float64)
    gt = np.zeros((7, 14, 3))
    gt[..., 2] = 0.02 * t[:, None] + 3.0  # constant velocity along z
    e = 0.01
    pred = gt.copy()
    pred[:, 5, 0] += e * (-1.0) ** t
    np.testing.assert_allclose(metrics.accel_error(gt, gt), 0.0, atol=1e-7)
    np.testing.assert_allclose(metrics.accel_error(pred, gt), 4 * e / 14, rtol=1e-5)
    # Through the 3DPW tracks (frames 10..16, frame 13 unmatched): only the differences that
    # avoid frame 13 (centred at 11 and 15) count, each 4e / 14.
    items = [(10 + i, pred[i], gt[i]) for i in range(7) if i != 3]
    errs = pw3d.accel_tracks([items])
    np.testing.assert_allclose(errs, [4 * e / 14] * 2, rtol=1e-5)


def test_shape_annotations_hold_under_beartype():
    from beartype import beartype
    from jaxtyping import jaxtyped

    a, b = jnp.ones((2, 5, 3)), jnp.zeros((2, 5, 3))
    for fn in (metrics.mpjpe, metrics.pve, metrics.pa_mpjpe, metrics.similarity_procrustes):
        jaxtyped(typechecker=beartype)(fn)(a, b)
    jaxtyped(typechecker=beartype)(metrics.accel_error)(jnp.ones((6, 5, 3)), jnp.zeros((6, 5, 3)))
    with pytest.raises(Exception, match="n"):
        jaxtyped(typechecker=beartype)(metrics.mpjpe)(a, jnp.zeros((2, 4, 3)))
