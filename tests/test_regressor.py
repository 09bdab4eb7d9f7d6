"""Regressor (IEF from mean parameters), mean parameters and the camera maths."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from siam_jax.models import camera, mean_params
from siam_jax.models.regressor import IterativeRegressor


def _rot6d_to_matrix_np(x):
    """Gram-Schmidt on the two columns of the 3x2 (row-major) layout (Zhou et al. CVPR'19)."""
    m = x.reshape(-1, 3, 2)
    a = m[:, :, 0] / np.linalg.norm(m[:, :, 0], axis=-1, keepdims=True)
    b = m[:, :, 1] - (a * m[:, :, 1]).sum(-1, keepdims=True) * a
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def test_rest_mean_params_are_rotations_with_upright_root():
    p = mean_params.rest_mean_params()
    assert p["pose"].shape == (144,) and p["shape"].shape == (10,) and p["cam"].shape == (3,)
    rot = _rot6d_to_matrix_np(p["pose"])
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6
    )
    # 6D is exactly the first two columns, row-major (no Gram-Schmidt change for rotations)
    np.testing.assert_allclose(rot[:, :, :2].reshape(-1), p["pose"], atol=1e-6)
    # root: pi about x maps SMPL's y-up to the camera's y-down
    np.testing.assert_allclose(rot[0], np.diag([1.0, -1.0, -1.0]), atol=1e-6)
    np.testing.assert_allclose(rot[3], np.eye(3), atol=1e-6)  # spine1 untouched
    assert np.all(p["shape"] == 0)


def test_load_mean_params_npz(tmp_path):
    good = {"pose": np.arange(144.0), "shape": np.ones(10), "cam": np.array([0.9, 0.1, 0.2])}
    np.savez(tmp_path / "m.npz", **good)
    got = mean_params.get_mean_params(str(tmp_path / "m.npz"))
    for k, v in good.items():
        np.testing.assert_allclose(got[k], v)
    np.savez(tmp_path / "bad.npz", pose=np.zeros(144), shape=np.zeros(9), cam=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        mean_params.load_mean_params(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "missing.npz", pose=np.zeros(144))
    with pytest.raises(KeyError, match=r"cam|shape"):
        mean_params.load_mean_params(str(tmp_path / "missing.npz"))
    with pytest.raises(FileNotFoundError):
        mean_params.load_mean_params(str(tmp_path / "nope.npz"))


def test_regressor_iterates_from_the_mean():
    mean = mean_params.rest_mean_params()
    reg = IterativeRegressor(8, 16, mean, num_iterations=3, rngs=nnx.Rngs(0))
    feat = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 8)), jnp.float32)
    pose, betas, cam = reg(feat, feat, feat)
    assert pose.shape == (2, 5, 144) and betas.shape == (2, 5, 10) and cam.shape == (2, 5, 3)
    # small decoder init (gain 0.01): the first prediction stays near the mean, but moves
    full = np.concatenate([mean["pose"], mean["shape"], mean["cam"]])
    got = np.concatenate([np.asarray(x) for x in (pose, betas, cam)], -1)
    delta = np.abs(got - full)
    assert delta.max() < 0.1 and delta.max() > 0
    # with zero decoders the output is exactly the mean
    for head in (reg.pose, reg.shape, reg.camera):
        head.dec.kernel[...] = jnp.zeros_like(head.dec.kernel[...])
        head.dec.bias[...] = jnp.zeros_like(head.dec.bias[...])
    got = np.concatenate([np.asarray(x) for x in reg(feat, feat, feat)], -1)
    np.testing.assert_allclose(got, np.broadcast_to(full, got.shape), atol=1e-6)
    # each head reads its own feature: changing the camera feature leaves pose and betas alone
    reg2 = IterativeRegressor(8, 16, mean, num_iterations=1, rngs=nnx.Rngs(1))
    a = reg2(feat, feat, feat)
    b = reg2(feat, feat, feat + 1.0)
    np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_allclose(np.asarray(a[1]), np.asarray(b[1]))
    assert not np.allclose(np.asarray(a[2]), np.asarray(b[2]))


def test_default_intrinsics():
    k = np.asarray(camera.default_intrinsics(512, 60.0))
    f = 256 / math.tan(math.radians(30))
    np.testing.assert_allclose(k, [[f, 0, 255.5], [0, f, 255.5], [0, 0, 1]], rtol=1e-6)


def test_translation_puts_the_root_on_the_token_ray_at_the_weak_perspective_depth():
    k = camera.default_intrinsics(512, 60.0)
    f = float(k[0, 0])
    cam = jnp.asarray([[0.8, 0.0, 0.0], [0.5, 0.1, -0.2]])
    centres = jnp.asarray([[100.0, 300.0], [400.0, 50.0]])
    t = np.asarray(camera.cam_to_translation(cam, centres, k, 512))
    np.testing.assert_allclose(t[:, 2], 2 * f / (np.array([0.8, 0.5]) * 512), rtol=1e-6)
    # (tx, ty) = 0: the origin projects exactly to the token centre
    uv = np.asarray(camera.perspective_projection(jnp.asarray(t[:1, None]), k))
    np.testing.assert_allclose(uv[0, 0], [100.0, 300.0], rtol=1e-5)
    # weak perspective agreement: x_n = s (X + tx_global) with x_n = (u - c) / (size / 2)
    xn = (np.asarray(centres) - 255.5) / 256
    np.testing.assert_allclose(
        t[:, :2] - np.asarray(cam[:, 1:]), xn / np.asarray(cam[:, :1]), rtol=1e-5
    )


def test_perspective_projection_matches_numpy_with_general_intrinsics():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3, 7, 3)) + np.array([0.0, 0.0, 5.0])
    k = np.array([[[500.0, 0, 320], [0, 480, 200], [0, 0, 1]]] * 3)
    uvw = np.einsum("bij,bpj->bpi", k, pts)
    ref = uvw[..., :2] / uvw[..., 2:]
    got = camera.perspective_projection(jnp.asarray(pts, jnp.float32), jnp.asarray(k, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5)
