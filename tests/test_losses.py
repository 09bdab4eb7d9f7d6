"""Loss terms against closed forms and invariances (siam_jax/training/losses.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from siam_jax.training import losses
from tests import test_train_helpers as h


def _focal_reference(p, y):
    """CenterNet's _neg_loss (penalty-reduced focal loss) written out with numpy loops."""
    p = np.clip(p, 1e-4, 1 - 1e-4)
    pos_loss = neg_loss = 0.0
    num_pos = 0
    for pi, yi in zip(p.ravel(), y.ravel(), strict=True):
        if yi == 1:
            pos_loss += np.log(pi) * (1 - pi) ** 2
            num_pos += 1
        else:
            neg_loss += np.log(1 - pi) * pi**2 * (1 - yi) ** 4
    return -(pos_loss + neg_loss) / max(num_pos, 1)


def test_center_focal_loss_matches_reference():
    r = np.random.default_rng(0)
    p = r.uniform(size=(2, 1, 5, 5)).astype(np.float32)
    y = r.uniform(size=(2, 1, 5, 5)).astype(np.float32) * 0.9
    y[0, 0, 2, 3] = y[1, 0, 0, 0] = y[1, 0, 4, 1] = 1.0
    got = losses.center_focal_loss(jnp.asarray(p), jnp.asarray(y))
    np.testing.assert_allclose(got, _focal_reference(p, y), rtol=1e-5)
    # a masked-out frame counts neither its pixels nor its centres
    mask = jnp.array([[True], [False]])
    got = losses.center_focal_loss(jnp.asarray(p), jnp.asarray(y), mask)
    np.testing.assert_allclose(got, _focal_reference(p[:1], y[:1]), rtol=1e-5)


def _perfect_outputs(batch, body):
    """Outputs equal to the ground truth (the GT mesh in the camera frame)."""
    from siam_jax.body import rotations

    go = rotations.axis_angle_to_matrix(jnp.asarray(batch["global_orient"]))[..., None, :, :]
    bp = rotations.axis_angle_to_matrix(jnp.asarray(batch["body_pose"]))
    out = body(
        jnp.asarray(batch["betas"]),
        jnp.asarray(batch["body_pose"]),
        jnp.asarray(batch["global_orient"]),
        jnp.asarray(batch["transl"]),
    )
    return {
        "center_heatmap": jnp.asarray(batch["center_heatmap"]),
        "pred_smpl_params": {"global_orient": go, "body_pose": bp, "betas": batch["betas"]},
        "pred_vertices": out.vertices,
        "pred_keypoints_3d": jnp.asarray(batch["joints_3d"]),
        "pred_keypoints_2d": jnp.asarray(batch["joints_2d"]),
    }


WEIGHTS = {name: 1.0 for name in losses.TERMS}


@pytest.fixture(scope="module")
def setup():
    body = h.FakeBody.make()
    batch = h.make_batch(0, 4, body=body)
    return body, batch


def _terms(outputs, batch, body, aux=None):
    return losses.compute_losses(
        outputs, aux or {}, batch, body_model=body, weights=WEIGHTS, input_size=h.INPUT
    )


def test_perfect_prediction_has_zero_regression_losses(setup):
    body, batch = setup
    total, terms = _terms(_perfect_outputs(batch, body), batch, body)
    for name in ("pose", "betas", "keypoints_3d", "keypoints_2d", "vertices"):
        np.testing.assert_allclose(terms[name], 0.0, atol=2e-6, err_msg=name)
    # total is the weighted sum of the terms
    np.testing.assert_allclose(total, sum(terms.values()), rtol=1e-6)


def test_masks_and_invariances(setup):
    body, batch = setup
    perfect = _perfect_outputs(batch, body)
    valid = np.asarray(batch["person_valid"])
    # 1) Corrupting only masked-out slots changes nothing.
    bad = jax.tree.map(lambda x: x, perfect)
    noise = jnp.where(~valid[..., None, None], 5.0, 0.0)
    bad["pred_keypoints_3d"] = perfect["pred_keypoints_3d"] + noise
    bad["pred_keypoints_2d"] = perfect["pred_keypoints_2d"] + noise
    bad["pred_vertices"] = perfect["pred_vertices"] + noise
    _, terms = _terms(bad, batch, body)
    for name in ("keypoints_3d", "keypoints_2d", "vertices"):
        np.testing.assert_allclose(terms[name], 0.0, atol=2e-6, err_msg=name)
    # 2) Pelvis alignment: a global shift of the predicted person costs nothing in 3D.
    shifted = dict(perfect)
    shifted["pred_keypoints_3d"] = perfect["pred_keypoints_3d"] + jnp.array([0.3, -0.2, 1.0])
    shifted["pred_vertices"] = perfect["pred_vertices"] + jnp.array([0.3, -0.2, 1.0])
    _, terms = _terms(shifted, batch, body)
    np.testing.assert_allclose(terms["keypoints_3d"], 0.0, atol=2e-6)
    np.testing.assert_allclose(terms["vertices"], 0.0, atol=2e-6)
    # 3) 2D: a shift of d pixels on every joint costs d / input_size per coordinate (L1 sum of
    #    the two coordinates), and only visible joints count.
    d = 3.0
    moved = dict(perfect)
    moved["pred_keypoints_2d"] = perfect["pred_keypoints_2d"] + d
    _, terms = _terms(moved, batch, body)
    np.testing.assert_allclose(terms["keypoints_2d"], 2 * d / h.INPUT, rtol=1e-5)
    # 4) has_3d = False removes the person from the 3D loss.
    no3d = dict(batch, has_3d=np.zeros_like(batch["has_3d"]))
    _, terms = _terms(moved | {"pred_keypoints_3d": perfect["pred_keypoints_3d"] * 2}, no3d, body)
    assert float(terms["keypoints_3d"]) == 0.0


def test_pose_and_betas_losses_closed_form(setup):
    body, batch = setup
    perfect = _perfect_outputs(batch, body)
    valid = np.asarray(batch["person_valid"])
    wrong = dict(perfect)
    smpl = dict(perfect["pred_smpl_params"])
    smpl["betas"] = jnp.asarray(batch["betas"]) + 0.5
    # a rotation by pi about x flips y and z: (R' - R) has entries -2 R[:, 1:], so the mean
    # squared entry is 4 * (|R e_y|^2 + |R e_z|^2) / 9 = 8 / 9 for every joint.
    flip = jnp.diag(jnp.array([1.0, -1.0, -1.0]))
    smpl["body_pose"] = perfect["pred_smpl_params"]["body_pose"] @ flip
    smpl["global_orient"] = perfect["pred_smpl_params"]["global_orient"] @ flip
    wrong["pred_smpl_params"] = smpl
    _, terms = _terms(wrong, batch, body)
    np.testing.assert_allclose(terms["pose"], 8.0 / 9.0, rtol=1e-5)
    np.testing.assert_allclose(terms["betas"], 0.25, rtol=1e-5)
    # the prior is the mean squared norm of the predicted betas over the real persons
    b = np.asarray(smpl["betas"])
    want = np.sum(b**2, -1)[valid].mean()
    np.testing.assert_allclose(terms["betas_prior"], want, rtol=1e-5)


def test_empty_batch_gives_zero_not_nan(setup):
    body, batch = setup
    empty = dict(batch, person_valid=np.zeros_like(batch["person_valid"]))
    outputs = _perfect_outputs(batch, body)
    outputs["pred_keypoints_3d"] = outputs["pred_keypoints_3d"] + 1.0

    def total(o):
        return _terms(o, empty, body, aux={"fd_decorrelation": jnp.float32(0.5)})[0]

    _, terms = _terms(outputs, empty, body, aux={"fd_decorrelation": jnp.float32(0.5)})
    for name in ("pose", "betas", "keypoints_3d", "keypoints_2d", "vertices", "betas_prior"):
        assert float(terms[name]) == 0.0, name
    assert float(terms["decorrelation"]) == 0.5
    g = jax.grad(total)(outputs)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_unknown_weight_is_an_error(setup):
    body, batch = setup
    with pytest.raises(ValueError, match="keypoint_3d"):
        losses.compute_losses(
            _perfect_outputs(batch, body),
            {},
            batch,
            body_model=body,
            weights={"keypoint_3d": 1.0},
            input_size=h.INPUT,
        )


def test_zero_weight_terms_are_not_computed(setup):
    body, batch = setup

    def no_body(*args, **kwargs):
        raise AssertionError("the GT mesh was built although the vertex term has weight 0")

    weights = dict(WEIGHTS, vertices=0.0, betas=0.0)
    total, terms = losses.compute_losses(
        _perfect_outputs(batch, body), {}, batch, body_model=no_body, weights=weights,
        input_size=h.INPUT,
    )  # fmt: skip
    assert set(terms) == set(WEIGHTS) - {"vertices", "betas"}
    np.testing.assert_allclose(total, sum(terms.values()), rtol=1e-6)
