"""body.RestRoot (J0 of the shaped template) and the config-driven loaders of siam_jax.body."""

import jax
import ml_collections
import numpy as np
import pytest

from siam_jax import body


@pytest.fixture(scope="module")
def model():
    return body.make_procedural_body_model(seed=0)


def _posed_root(model, betas):
    """Joint 0 of the zero-pose forward: the root stays at J0 (smplx batch_rigid_transform)."""
    n = betas.shape[0]
    out = jax.jit(lambda b: model(betas=b, body_pose=np.zeros((n, 23, 3), np.float32),
                                  global_orient=np.zeros((n, 3), np.float32)))(betas)  # fmt: skip
    return np.asarray(out.joints[:, 0], np.float64)


def test_rest_root_matches_body_model(model):
    betas = np.random.default_rng(3).normal(0, 1, (4, 10)).astype(np.float32)
    root = body.RestRoot.from_body_model(model)(betas)
    np.testing.assert_allclose(root, _posed_root(model, betas), atol=1e-5)


def test_rest_root_leading_shapes_and_genders(model):
    other = body.make_procedural_body_model(seed=1)  # different shape directions
    rng = np.random.default_rng(0)
    betas = rng.normal(0, 1, (2, 3, 10)).astype(np.float32)
    gender = np.array([[0, 1, 2], [1, 1, 0]])
    rr = body.RestRoot({0: model, 1: other})
    got = rr(betas, gender)
    assert got.shape == (2, 3, 3)
    flat, codes = betas.reshape(-1, 10), gender.reshape(-1)
    by_code = {0: _posed_root(model, flat), 1: _posed_root(other, flat)}
    # Code 2 has no model of its own: it uses the default (code 0).
    model_of = {0: 0, 1: 1, 2: 0}
    want = np.stack([by_code[model_of[c]][i] for i, c in enumerate(codes)])
    np.testing.assert_allclose(got.reshape(-1, 3), want, atol=1e-5)
    # One person, no batch axis; fewer betas than the model count as zeros.
    np.testing.assert_allclose(rr(betas[0, 0]), by_code[0][0], atol=1e-5)
    np.testing.assert_allclose(
        rr(betas[0, :, :4]), _posed_root(model, np.pad(betas[0, :, :4], ((0, 0), (0, 6)))),
        atol=1e-5,
    )  # fmt: skip
    assert rr(np.zeros((0, 10))).shape == (0, 3)
    with pytest.raises(ValueError, match="gender has shape"):
        rr(betas, gender[0])
    with pytest.raises(ValueError, match="default gender code"):
        body.RestRoot({1: other}, default=0)


def _bm_config(path="", gender="neutral"):
    return ml_collections.ConfigDict(
        {"path": path, "gender": gender, "procedural_seed": 0, "h36m_regressor_path": ""}
    )


def test_body_model_from_config_is_the_cached_model(model):
    assert body.body_model_from_config(_bm_config()) is body.get_body_model()


def test_rest_root_from_config_gendered_folder(tmp_path, model):
    # A folder with only the male model: males use it, everyone else the configured (male) one.
    other = body.make_procedural_body_model(seed=1)
    body.save_body_model(other, tmp_path / "SMPL_MALE.npz")
    rr = body.rest_root_from_config(_bm_config(str(tmp_path), gender="male"))
    betas = np.random.default_rng(1).normal(0, 1, (3, 10)).astype(np.float32)
    want = _posed_root(other, betas)
    np.testing.assert_allclose(rr(betas, np.array([0, 1, 2])), want, atol=1e-5)
    # A broken file is an error, not a silent fallback to another gender's model.
    (tmp_path / "SMPL_FEMALE.npz").write_bytes(b"not an npz")
    with pytest.raises(Exception, match="SMPL_FEMALE"):
        body.rest_root_from_config(_bm_config(str(tmp_path), gender="male"))


def test_gender_codes_are_the_schema_codes():
    from siam_jax.data import schema

    assert body.GENDERS == schema.GENDERS
