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
        "pred_cam_t": jnp.asarray(batch["transl"]),
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
    for name in ("pose", "global_orient", "betas", "transl", "keypoints_3d", "keypoints_2d",
                 "vertices"):  # fmt: skip
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
    # 3) 2D: the predicted points are projected through the batch intrinsics (f = 40). Moving
    #    each predicted 3D joint by d z / f along x moves its projection by d pixels in u: the
    #    loss is d / input_size (only u moves), whatever the joint's depth.
    d = 3.0
    moved = dict(perfect)
    j3 = perfect["pred_keypoints_3d"]
    moved["pred_keypoints_3d"] = j3.at[..., 0].add(d * j3[..., 2] / 40.0)
    _, terms = _terms(moved, batch, body)
    np.testing.assert_allclose(terms["keypoints_2d"], d / h.INPUT, rtol=1e-4)
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
    np.testing.assert_allclose(terms["global_orient"], 8.0 / 9.0, rtol=1e-5)
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
    for name in ("pose", "global_orient", "betas", "transl", "keypoints_3d", "keypoints_2d",
                 "vertices", "betas_prior"):  # fmt: skip
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

    # The keypoint terms pose the predicted mesh (for points beyond the 24 joints), so they
    # are off too: then nothing may call the body model.
    off = {"vertices", "betas", "keypoints_3d", "keypoints_2d"}
    weights = dict(WEIGHTS, **dict.fromkeys(off, 0.0))
    total, terms = losses.compute_losses(
        _perfect_outputs(batch, body), {}, batch, body_model=no_body, weights=weights,
        input_size=h.INPUT,
    )  # fmt: skip
    assert set(terms) == set(WEIGHTS) - off
    np.testing.assert_allclose(total, sum(terms.values()), rtol=1e-6)


FLAG_TERMS = {
    "has_pose": ("pose", "vertices"),
    "has_global_orient": ("global_orient", "vertices"),
    "has_betas": ("betas", "vertices"),
    "has_transl": ("transl",),
    "has_3d": ("keypoints_3d",),
    "has_2d": ("keypoints_2d",),
}


def _wrong(batch, body):
    """Every per-person prediction off: rotations flipped, betas, translation and joints moved."""
    out = _perfect_outputs(batch, body)
    flip = jnp.diag(jnp.array([1.0, -1.0, -1.0]))
    smpl = dict(out["pred_smpl_params"])
    smpl["body_pose"] = smpl["body_pose"] @ flip
    smpl["global_orient"] = smpl["global_orient"] @ flip
    smpl["betas"] = jnp.asarray(batch["betas"]) + 0.5
    out["pred_smpl_params"] = smpl
    out["pred_cam_t"] = out["pred_cam_t"] + 0.2
    j3 = out["pred_keypoints_3d"]
    out["pred_keypoints_3d"] = j3 * jnp.array([1.1, 0.9, 1.0])  # not a pure shift
    return out


@pytest.mark.parametrize("flag", sorted(FLAG_TERMS))
def test_each_term_is_masked_by_its_own_flag(setup, flag):
    body, batch = setup
    wrong = _wrong(batch, body)
    _, on = _terms(wrong, batch, body)
    _, off = _terms(wrong, dict(batch, **{flag: np.zeros_like(batch[flag])}), body)
    for name in ("pose", "global_orient", "betas", "transl", "keypoints_3d", "keypoints_2d",
                 "vertices"):  # fmt: skip
        assert float(on[name]) > 1e-4, name  # every term is supervised with all flags on
        if name in FLAG_TERMS[flag]:
            assert float(off[name]) == 0.0, (flag, name)
        else:
            np.testing.assert_allclose(off[name], on[name], rtol=1e-6, err_msg=(flag, name))
    counts = losses.supervision_counts(dict(batch, **{flag: np.zeros_like(batch[flag])}))
    for name in FLAG_TERMS[flag]:
        assert float(counts[name]) == 0.0, (flag, name)


def test_centre_negatives_only_in_fully_annotated_frames_outside_dont_care():
    # Hand-computed: b=1, t=2 frames of 2x2 cells. Frame 0 fully annotated, cell (0, 1)
    # don't-care; frame 1 not fully annotated: only its peak counts.
    p = np.array([[[[0.9, 0.3], [0.2, 0.6]], [[0.4, 0.7], [0.5, 0.1]]]], np.float32)
    y = np.array([[[[1.0, 0.5], [0.0, 0.25]], [[0.0, 1.0], [0.5, 0.0]]]], np.float32)
    ignore = np.zeros((1, 2, 2, 2), bool)
    ignore[0, 0, 0, 1] = True
    full = np.array([[True, False]])
    neg = full[..., None, None] & ~ignore
    got = losses.center_focal_loss(jnp.asarray(p), jnp.asarray(y), None, jnp.asarray(neg))
    pos = -np.log(0.9) * 0.1**2 - np.log(0.7) * 0.3**2
    negs = -np.log(1 - 0.2) * 0.2**2 * 1.0**4 - np.log(1 - 0.6) * 0.6**2 * 0.75**4
    np.testing.assert_allclose(got, (pos + negs) / 2, rtol=1e-5)
    batch = {"center_heatmap": y, "center_ignore": ignore, "all_persons_annotated": full,
             "person_valid": np.zeros((1, 2, 1), bool)}  # fmt: skip
    batch |= {f: np.zeros((1, 2, 1), bool) for f in losses.BATCH_KEYS if f.startswith("has_")}
    shapes = {"keypoints_3d": (61, 3), "keypoints_2d": (61, 2), "keypoints_3d_visibility": (61,),
              "keypoints_2d_visibility": (61,), "joints_3d": (24, 3), "joints_2d": (24, 2),
              "visibility": (24,), "joints_h36m_3d": (17, 3), "h36m_visibility": (17,)}  # fmt: skip
    batch |= {name: np.zeros((1, 2, 1, *shape)) for name, shape in shapes.items()}
    counts = losses.supervision_counts(batch)
    assert float(counts["center_positives"]) == 2 and float(counts["center_negatives"]) == 2


def test_dataset_keypoints_against_points_regressed_from_the_predicted_mesh():
    """COCO-style person: nose, dataset hips (SPIN's extra points) and the H36M head; the GT is
    computed here with numpy from the GT mesh (vertex 332 = smplx 'nose'; the procedural model's
    H36M regressor rows), independently of keypoints.regress_keypoints."""
    from siam_jax import body as body_lib
    from siam_jax.body import joint_sets
    from siam_jax.body import keypoints as kp

    model = body_lib.make_procedural_body_model(seed=0)
    r = np.random.default_rng(3)
    betas = r.normal(0, 0.5, (1, 1, 1, 10)).astype(np.float32)
    pose = r.normal(0, 0.2, (1, 1, 1, 23, 3)).astype(np.float32)
    orient = np.array([[[[np.pi, 0.0, 0.0]]]], np.float32)
    transl = np.array([[[[0.1, 0.2, 4.0]]]], np.float32)
    out = model(betas=betas, body_pose=pose, global_orient=orient, transl=transl)
    verts = np.asarray(out.vertices, np.float64)[0, 0, 0]
    h36m = np.asarray(model.h36m_regressor, np.float64) @ verts
    hn = joint_sets.H36M_JOINT_NAMES
    points = {
        "nose": verts[332],
        "lsp_left_hip": h36m[hn.index("left_hip")],
        "lsp_right_hip": h36m[hn.index("right_hip")],
        "h36m_head": h36m[hn.index("head_top")],
    }
    k = np.array([[500.0, 0, 63.5], [0, 500.0, 63.5], [0, 0, 1]], np.float32)
    batch = h.schema2_defaults(1, 1, 1, 16, np.zeros((1, 1, 1), bool))
    for name, xyz in points.items():
        j = kp.KEYPOINT_INDEX[name]
        batch["keypoints_3d"][0, 0, 0, j] = xyz
        batch["keypoints_3d_visibility"][0, 0, 0, j] = 1
        uvw = k @ xyz
        batch["keypoints_2d"][0, 0, 0, j] = uvw[:2] / uvw[2]
        batch["keypoints_2d_visibility"][0, 0, 0, j] = 1
    batch.update(
        has_keypoints_3d=np.ones((1, 1, 1), bool), has_keypoints_2d=np.ones((1, 1, 1), bool),
        has_3d=np.zeros((1, 1, 1), bool), has_2d=np.zeros((1, 1, 1), bool),
        has_smpl=np.zeros((1, 1, 1), bool), person_valid=np.ones((1, 1, 1), bool),
        intrinsics=k[None, None], center_heatmap=np.zeros((1, 1, 16, 16), np.float32),
        betas=betas, body_pose=pose, global_orient=orient, transl=transl,
        joints_3d=np.zeros((1, 1, 1, 24, 3), np.float32),
        joints_2d=np.zeros((1, 1, 1, 24, 2), np.float32),
        visibility=np.zeros((1, 1, 1, 24), np.float32),
    )  # fmt: skip

    from siam_jax.body import rotations

    def run(transl_shift=0.0, gt_shift=None, mesh_points=None):
        # The mesh points are posed from the predicted parameters (here the GT ones), as the
        # train step's outputs carry them; gt_shift moves one GT point instead of the mesh.
        b = dict(batch)
        if gt_shift is not None:
            name, dx = gt_shift
            j = kp.KEYPOINT_INDEX[name]
            b["keypoints_3d"] = batch["keypoints_3d"].copy()
            b["keypoints_3d"][0, 0, 0, j, 0] += dx
            uvw = k @ b["keypoints_3d"][0, 0, 0, j]
            b["keypoints_2d"] = batch["keypoints_2d"].copy()
            b["keypoints_2d"][0, 0, 0, j] = uvw[:2] / uvw[2]
        rot = rotations.axis_angle_to_matrix(jnp.asarray(pose))
        root = rotations.axis_angle_to_matrix(jnp.asarray(orient))[..., None, :, :]
        outputs = {
            "pred_smpl_params": {"betas": betas, "body_pose": rot, "global_orient": root},
            "pred_cam_t": jnp.asarray(transl + transl_shift, jnp.float32),
            # read for its shape only: the mesh points are posed from the parameters above
            "pred_vertices": jnp.zeros_like(out.vertices),
            "pred_keypoints_3d": jnp.asarray(np.asarray(out.joints) + transl_shift, jnp.float32),
        }
        w = {"keypoints_3d": 1.0, "keypoints_2d": 1.0}
        return losses.compute_losses(
            outputs, {}, b, body_model=model, weights=w, input_size=128, mesh_points=mesh_points
        )[1]

    terms = run()
    np.testing.assert_allclose(terms["keypoints_3d"], 0.0, atol=1e-6)
    np.testing.assert_allclose(terms["keypoints_2d"], 0.0, atol=1e-5)
    # 3D is aligned at the dataset hips' midpoint: a shifted person costs nothing in 3D.
    np.testing.assert_allclose(run(transl_shift=0.3)["keypoints_3d"], 0.0, atol=1e-6)
    # Moving only the GT nose by 0.12 m in x: one of the four points is off by 0.12 in one of
    # three coordinates -> L1 mean 0.12 / 3 / 4; in 2D by 500 * 0.12 / z_nose pixels in u.
    terms = run(gt_shift=("nose", 0.12))
    np.testing.assert_allclose(terms["keypoints_3d"], 0.12 / 3 / 4, rtol=1e-4)
    du = 500 * 0.12 / points["nose"][2]
    np.testing.assert_allclose(terms["keypoints_2d"], du / 128 / 4, rtol=1e-3)

    # The trainer decides on the host whether the mesh is needed (a static flag): these points
    # need it, and the static True gives the device decision's numbers.
    assert losses.mesh_points_supervised(batch, {"keypoints_3d": 1.0, "keypoints_2d": 1.0})
    assert not losses.mesh_points_supervised(batch, {"keypoints_3d": 0.0, "keypoints_2d": 0.0})
    for name, value in run(gt_shift=("nose", 0.12), mesh_points=True).items():
        np.testing.assert_allclose(value, terms[name], rtol=1e-6, err_msg=name)


def test_host_mesh_point_decision_matches_the_device_one(setup):
    """``mesh_points_supervised`` (numpy) agrees with the device's ``_mesh_point_weight > 0``
    point by point, and a static flag gives the lax.cond's losses."""
    from siam_jax.body import keypoints as kp

    body, batch = setup  # SMPL joints only: no point beyond the 24 joints
    assert not losses.mesh_points_supervised(batch, WEIGHTS)
    assert float(losses._mesh_point_weight(batch, WEIGHTS)) == 0.0
    outputs = _wrong(batch, body)
    ref = _terms(outputs, batch, body)[1]
    for flag in (False, True):
        got = losses.compute_losses(
            outputs, {}, batch, body_model=body, weights=WEIGHTS, input_size=h.INPUT,
            mesh_points=flag,
        )[1]  # fmt: skip
        for name in ref:
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-6, err_msg=(flag, name))
    # One visible point of each kind turns the decision on, as on the device.
    cases = {
        "keypoints_3d_visibility": ("has_keypoints_3d", kp.KEYPOINT_INDEX["nose"]),
        "keypoints_2d_visibility": ("has_keypoints_2d", kp.KEYPOINT_INDEX["nose"]),
        "h36m_visibility": ("has_h36m", 3),
    }
    for field, (flag, point) in cases.items():
        b = dict(batch)
        b[field] = np.array(batch[field], np.float32, copy=True)
        b[field][0, 0, 0, point] = 1.0
        b[flag] = np.array(batch[flag], bool, copy=True)
        b[flag][0, 0, 0] = True
        assert losses.mesh_points_supervised(b, WEIGHTS), field
        assert float(losses._mesh_point_weight(b, WEIGHTS)) > 0, field
        off = dict(WEIGHTS, keypoints_3d=0.0, keypoints_2d=0.0)
        assert not losses.mesh_points_supervised(b, off), field
    # A visible SMPL joint alone (the synthetic set's supervision) needs no mesh.
    b = dict(batch)
    b["keypoints_2d_visibility"] = np.array(batch["keypoints_2d_visibility"], np.float32, copy=True)
    b["keypoints_2d_visibility"][0, 0, 0, kp.KEYPOINT_INDEX["smpl_pelvis"]] = 1.0
    b["has_keypoints_2d"] = np.ones_like(np.asarray(batch["has_keypoints_2d"], bool))
    assert not losses.mesh_points_supervised(b, WEIGHTS)
    assert float(losses._mesh_point_weight(b, WEIGHTS)) == 0.0
