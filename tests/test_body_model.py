"""BodyModel invariants on the procedural model: shapes, zero pose, flips, transforms, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from siam_jax import body
from siam_jax.body import joint_sets, rotations
from siam_jax.body.procedural import NUM_FACES, NUM_VERTICES

M = np.array([-1.0, 1.0, 1.0], np.float32)


@pytest.fixture(scope="module")
def model():
    return body.make_procedural_body_model(0)


def _random_params(rng, batch=(3,), scale=0.6):
    betas = rng.normal(size=(*batch, 10)).astype(np.float32)
    pose = (scale * rng.normal(size=(*batch, 24, 3))).astype(np.float32)
    transl = rng.normal(size=(*batch, 3)).astype(np.float32)
    return betas, pose, transl


def test_procedural_sizes_and_proportions(model):
    v = np.asarray(model.v_template)
    assert v.shape == (NUM_VERTICES, 3) == (6890, 3)
    assert model.faces.shape == (NUM_FACES, 3) == (13776, 3)
    assert model.posedirs.shape == (207, 6890 * 3)
    assert model.shapedirs.shape == (6890, 3, 10) and model.num_betas == 10
    assert model.parents == joint_sets.SMPL_PARENTS
    f = np.asarray(model.faces)
    assert f.min() == 0 and f.max() == 6889
    assert np.all(np.bincount(f.ravel(), minlength=6890) > 0)  # no orphan vertex
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.85
    joints = np.asarray(model.J_regressor @ model.v_template)
    names = joint_sets.SMPL_JOINT_NAMES
    j = {n: joints[i] for i, n in enumerate(names)}
    # y up, left at +x (SMPL template), head above neck above pelvis above knees above ankles.
    assert j["left_hip"][0] > 0 > j["right_hip"][0]
    assert j["left_wrist"][0] > 0.5 and j["right_wrist"][0] < -0.5
    assert j["head"][1] > j["neck"][1] > j["pelvis"][1] > j["left_knee"][1] > j["left_ankle"][1]
    assert j["left_foot"][2] > j["left_ankle"][2]  # toes point forward (+z)
    # pelvis ~0.1-0.35 m below the vertex centroid (SMPL: ~0.22)
    assert 0.0 < v.mean(0)[1] - j["pelvis"][1] < 0.35


def test_regressors_are_convex_and_weights_partition(model):
    jr = np.asarray(model.J_regressor)
    assert np.all(jr >= 0) and np.allclose(jr.sum(1), 1.0, atol=1e-6)
    h = np.asarray(model.h36m_regressor)
    assert h.shape == (17, 6890) and np.all(h >= 0) and np.allclose(h.sum(1), 1.0, atol=1e-6)
    w = np.asarray(model.weights)
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1.0, atol=1e-6)
    # every joint drives some vertices except the leaf 'hand' joints may be small; all 24 used
    assert np.all(w.max(0) > 0.3)


def test_outward_orientation(model):
    v = np.asarray(model.v_template, np.float64)
    f = np.asarray(model.faces)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert 0.04 < volume < 0.12  # a ~70 kg body is ~0.07 m^3 (parts overlap a little)


def test_deterministic_per_seed():
    a = body.procedural.procedural_model_arrays(0)
    b = body.procedural.procedural_model_arrays(0)
    c = body.procedural.procedural_model_arrays(1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a["posedirs"], c["posedirs"])


def test_symmetry_is_exact(model):
    sym = np.asarray(model.sym_idx)
    np.testing.assert_array_equal(sym[sym], np.arange(6890))
    v = np.asarray(model.v_template)
    np.testing.assert_allclose(v[sym] * M, v, atol=1e-7)


def test_zero_pose_gives_shaped_template(model):
    rng = np.random.default_rng(1)
    betas, _, transl = _random_params(rng)
    out = model(betas, np.zeros((3, 23, 3)), np.zeros((3, 3)), transl)
    expected = (
        np.asarray(model.v_template)[None]
        + np.einsum("bl,vkl->bvk", betas, np.asarray(model.shapedirs))
        + transl[:, None]
    )
    np.testing.assert_allclose(np.asarray(out.vertices), expected, atol=1e-5)
    rest_joints = np.einsum(
        "jv,bvk->bjk", np.asarray(model.J_regressor), expected - transl[:, None]
    )
    np.testing.assert_allclose(np.asarray(out.joints), rest_joints + transl[:, None], atol=1e-5)
    ids = list(joint_sets.EXTRA_JOINT_VERTEX_IDS)
    np.testing.assert_allclose(np.asarray(out.joints45[:, 24:]), expected[:, ids], atol=1e-6)


def test_shape_directions_change_height_and_girth(model):
    v0 = np.asarray(model(jnp.zeros(10), jnp.zeros((23, 3)), jnp.zeros(3)).vertices)
    for beta0, sign in ((2.0, 1), (-2.0, -1)):
        betas = jnp.zeros(10).at[0].set(beta0)
        v = np.asarray(model(betas, jnp.zeros((23, 3)), jnp.zeros(3)).vertices)
        dh = np.ptp(v[:, 1]) - np.ptp(v0[:, 1])
        assert sign * dh > 0.05
    v = np.asarray(model(jnp.zeros(10).at[1].set(2.0), jnp.zeros((23, 3)), jnp.zeros(3)).vertices)
    assert np.ptp(v[:, 2]) > np.ptp(v0[:, 2]) + 0.02


def test_flip_twice_is_identity():
    rng = np.random.default_rng(2)
    pose = rng.normal(size=(4, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(
        joint_sets.flip_pose_axis_angle(joint_sets.flip_pose_axis_angle(pose)), pose
    )
    mats = rotations.axis_angle_to_matrix(pose)
    np.testing.assert_allclose(joint_sets.flip_rotmats(joint_sets.flip_rotmats(mats)), mats)
    # the matrix flip is the axis-angle flip
    np.testing.assert_allclose(
        rotations.axis_angle_to_matrix(joint_sets.flip_pose_axis_angle(pose)),
        joint_sets.flip_rotmats(mats),
        atol=1e-6,
    )
    kp = rng.normal(size=(2, 24, 2)).astype(np.float32)
    twice = joint_sets.flip_keypoints_2d(joint_sets.flip_keypoints_2d(kp, 640), 640)
    np.testing.assert_allclose(twice, kp, atol=1e-4)
    assert joint_sets.LSP_FLIP_PERM == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)  # SPIN
    assert joint_sets.SMPL_POSE_FLIP_PERM[:6] == (0, 1, 2, 6, 7, 8)


def test_flipped_pose_gives_mirrored_mesh(model):
    rng = np.random.default_rng(3)
    betas, pose, _ = _random_params(rng, scale=0.8)
    out = model(betas, pose[:, 1:], pose[:, 0])
    flipped = joint_sets.flip_pose_axis_angle(pose)
    out_f = model(betas, flipped[:, 1:], flipped[:, 0])
    sym = np.asarray(model.sym_idx)
    np.testing.assert_allclose(np.asarray(out_f.vertices)[:, sym] * M, out.vertices, atol=2e-5)
    perm = list(joint_sets.SMPL_JOINTS_FLIP_PERM)
    np.testing.assert_allclose(np.asarray(out_f.joints)[:, perm] * M, out.joints, atol=2e-5)
    h = np.asarray(model.regress_h36m(out.vertices))
    h_f = np.asarray(model.regress_h36m(out_f.vertices))
    np.testing.assert_allclose(h_f[:, list(joint_sets.H36M_FLIP_PERM)] * M, h, atol=2e-5)


def test_rotation_matrix_input_and_batch_shapes(model):
    rng = np.random.default_rng(4)
    betas, pose, transl = _random_params(rng, batch=(2, 3))
    out = model(betas, pose[..., 1:, :], pose[..., 0, :], transl)
    assert out.vertices.shape == (2, 3, 6890, 3)
    assert out.joints.shape == (2, 3, 24, 3) and out.joints45.shape == (2, 3, 45, 3)
    mats = rotations.axis_angle_to_matrix(pose)
    out_m = model(betas, mats[..., 1:, :, :], mats[..., :1, :, :], transl)
    np.testing.assert_allclose(out_m.vertices, out.vertices, atol=1e-5)
    flat = model(
        betas.reshape(6, 10), pose[..., 1:, :].reshape(6, 69), pose[..., 0, :].reshape(6, 3)
    )
    no_t = np.asarray(out.vertices) - transl[..., None, :]
    np.testing.assert_allclose(np.asarray(flat.vertices).reshape(no_t.shape), no_t, atol=1e-5)
    # unbatched, broadcasting betas against a batch of poses
    single = model(betas[0, 0], pose[0, 0, 1:], pose[0, 0, 0])
    assert single.vertices.shape == (6890, 3)
    bc = model(betas[0, 0], pose[0, :, 1:], pose[0, :, 0])
    np.testing.assert_allclose(bc.vertices[0], single.vertices, atol=1e-6)
    assert model.regress_lsp(out.vertices).shape == (2, 3, 14, 3)


def test_bad_shapes_are_named(model):
    with pytest.raises(ValueError, match="body_pose"):
        model(jnp.zeros(10), jnp.zeros((22, 3)), jnp.zeros(3))
    with pytest.raises(ValueError, match="global_orient"):
        model(jnp.zeros(10), jnp.zeros((23, 3)), jnp.zeros(4))
    with pytest.raises(ValueError, match="betas"):
        model(jnp.zeros(11), jnp.zeros((23, 3)), jnp.zeros(3))


def test_jit_vmap_grad(model):
    rng = np.random.default_rng(5)
    betas, pose, transl = _random_params(rng)
    eager = model(betas, pose[:, 1:], pose[:, 0], transl)
    jitted = jax.jit(lambda m, b, p, t: m(b, p[:, 1:], p[:, 0], t))(model, betas, pose, transl)
    np.testing.assert_allclose(jitted.vertices, eager.vertices, atol=1e-5)
    vm = jax.vmap(lambda b, p, t: model(b, p[1:], p[0], t).joints)(betas, pose, transl)
    np.testing.assert_allclose(vm, eager.joints, atol=1e-5)

    def loss(p, b):
        out = model(b, p[1:], p[0])
        return jnp.sum(out.vertices**2) + jnp.sum(out.joints45**2)

    for p in (jnp.zeros((24, 3)), jnp.asarray(pose[0])):
        gp, gb = jax.jit(jax.grad(loss, argnums=(0, 1)))(p, jnp.asarray(betas[0]))
        assert np.all(np.isfinite(gp)) and np.all(np.isfinite(gb))
        assert np.abs(gb).sum() > 0


def test_float64(model):
    rng = np.random.default_rng(6)
    betas, pose, transl = _random_params(rng)
    ref = model(betas, pose[:, 1:], pose[:, 0], transl)
    with jax.enable_x64(True):
        m64 = model.astype(jnp.float64)
        out = jax.jit(lambda m, *a: m(*a))(
            m64,
            jnp.asarray(betas, jnp.float64),
            jnp.asarray(pose[:, 1:], jnp.float64),
            jnp.asarray(pose[:, 0], jnp.float64),
            jnp.asarray(transl, jnp.float64),
        )
        assert out.vertices.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out.vertices), ref.vertices, atol=1e-5)
        grad_fn = jax.jit(
            jax.grad(lambda b: m64(b, jnp.zeros((23, 3)), jnp.zeros(3)).vertices.sum())
        )
        g = grad_fn(jnp.zeros(10, jnp.float64))
        assert g.dtype == jnp.float64


def test_get_body_model_cached():
    a = body.get_body_model()
    assert a is body.get_body_model("", "neutral", 0, "")
    assert a.v_template.shape == (6890, 3)


def test_body_model_digest_names_the_arrays_not_the_object():
    from siam_jax import body

    a = body.make_procedural_body_model(0)
    assert body.body_model_digest(a) == body.body_model_digest(body.make_procedural_body_model(0))
    assert body.body_model_digest(a) != body.body_model_digest(body.make_procedural_body_model(1))
    nudged = a.replace(v_template=a.v_template.at[0, 0].add(1e-3))
    assert body.body_model_digest(nudged) != body.body_model_digest(a)
    # float64 copies of the same arrays are the same model
    assert body.body_model_digest(a.astype(np.float64)) == body.body_model_digest(a)
