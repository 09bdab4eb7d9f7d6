"""Augmentation geometry: re-posed SMPL and projections stay consistent with the augmented frame."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from siam_jax.body import RestRoot
from siam_jax.data import augment, schema

_M = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def body_model():
    from siam_jax import body

    return body.make_procedural_body_model(seed=0)


@pytest.fixture(scope="module")
def pose_fn(body_model):
    import jax

    @jax.jit
    def fn(betas, body_pose, global_orient, transl):
        out = body_model(
            betas=betas, body_pose=body_pose, global_orient=global_orient, transl=transl
        )
        return out.vertices, out.joints

    def call(p):
        v, j = fn(
            np.asarray(p["betas"], np.float32),
            np.asarray(p["body_pose"], np.float32),
            np.asarray(p["global_orient"], np.float32),
            np.asarray(p["transl"], np.float32),
        )
        return np.asarray(v, np.float64), np.asarray(j, np.float64)

    return call


def _project(points, k):
    p = points @ np.asarray(k, np.float64).T
    return p[..., :2] / p[..., 2:3]


def _make_persons(pose_fn, k, n=3, seed=0):
    """Persons posed by the body model in front of a camera with intrinsics k."""
    rng = np.random.default_rng(seed)
    persons = [schema.empty_person() for _ in range(n)]
    p = schema.stack_persons(persons)
    p["betas"] = rng.normal(0, 1.0, (n, 10)).astype(np.float32)
    p["body_pose"] = rng.normal(0, 0.3, (n, 23, 3)).astype(np.float32)
    rot = Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", rng.uniform(-3, 3, (n, 1)))
    p["global_orient"] = rot.as_rotvec().astype(np.float32)
    p["transl"] = np.stack(
        [rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(3, 7, n)], -1
    ).astype(np.float32)
    v, j = pose_fn(p)
    p["joints_3d"] = j.astype(np.float32)
    p["joints_2d"] = _project(j, k).astype(np.float32)
    p["visibility"] = np.ones((n, 24), np.float32)
    pv = _project(v, k)
    p["bbox"] = np.concatenate([pv.min(1), pv.max(1)], -1).astype(np.float32)
    p["has_smpl"][:] = p["has_3d"][:] = p["has_2d"][:] = True
    return p


K = np.array([[300.0, 0, 161.0], [0, 310.0, 118.0], [0, 0, 1]], np.float32)
PARAMS = [
    augment.AugmentParams(),
    augment.AugmentParams(flip=True),
    augment.AugmentParams(rotation=0.4),
    augment.AugmentParams(scale=1.3, shift=(12.0, -7.0)),
    augment.AugmentParams(flip=True, rotation=-0.3, scale=0.8, shift=(-5.0, 9.0)),
]


@pytest.mark.parametrize("params", PARAMS, ids=range(len(PARAMS)))
def test_reposed_smpl_and_projection_match_augmented_joints(body_model, pose_fn, params):
    persons = _make_persons(pose_fn, K)
    rest = RestRoot.from_body_model(body_model)
    image = np.zeros((240, 320, 3), np.uint8)
    _, k2, p2 = augment.augment_frame(image, K, persons, params, 128, rest)
    _, j_reposed = pose_fn(p2)
    # float32 SMPL forward: micrometre-level agreement expected.
    np.testing.assert_allclose(j_reposed, p2["joints_3d"], atol=2e-4)
    proj = _project(p2["joints_3d"].astype(np.float64), k2)
    assert np.max(np.abs(proj - p2["joints_2d"])) < 1.0  # px (issue 5 check)
    assert np.max(np.abs(proj - p2["joints_2d"])) < 0.01  # and in fact to rounding


def test_flip_twice_is_identity(body_model, pose_fn):
    k = np.array([[200.0, 0, 60.0], [0, 205.0, 66.0], [0, 0, 1]], np.float32)
    persons = _make_persons(pose_fn, k, seed=1)
    rest = RestRoot.from_body_model(body_model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    flip = augment.AugmentParams(flip=True)
    img1, k1, p1 = augment.augment_frame(image, k, persons, flip, 128, rest)
    img2, k2, p2 = augment.augment_frame(
        np.round(img1 * 255).astype(np.uint8), k1, p1, flip, 128, rest
    )
    assert not np.allclose(img1, image / 255.0)
    np.testing.assert_allclose(img2 * 255, image, atol=0.51)
    np.testing.assert_allclose(k2, k, atol=1e-4)
    for key in ("global_orient", "body_pose", "transl", "joints_3d", "joints_2d", "bbox"):
        a, b = np.asarray(p2[key], np.float64), np.asarray(persons[key], np.float64)
        if key in ("global_orient", "body_pose"):
            # Axis-angles equal as rotations.
            ra = Rotation.from_rotvec(a.reshape(-1, 3)).as_matrix()
            rb = Rotation.from_rotvec(b.reshape(-1, 3)).as_matrix()
            np.testing.assert_allclose(ra, rb, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_allclose(a, b, atol=1e-4, err_msg=key)


def test_flipped_mesh_is_the_mirror_of_the_original(body_model, pose_fn):
    sym = np.asarray(body_model.sym_idx)
    persons = _make_persons(pose_fn, K, seed=2)
    rest = RestRoot.from_body_model(body_model)
    image = np.zeros((240, 320, 3), np.uint8)
    # Output size = width and no zoom, so the flip is the only change of the 3D frame.
    tr = augment.frame_transform(image.shape[:2], K, augment.AugmentParams(flip=True), 320)
    p2 = augment.transform_persons(persons, tr, rest)
    v1, _ = pose_fn(persons)
    v2, _ = pose_fn(p2)
    # Vertex i of the flipped body sits at the mirror image of vertex sym[i] of the original.
    mirrored = v1[:, sym] @ _M
    assert np.max(np.abs(v2 - mirrored)) < 1e-3  # m; exact for a symmetric model


def test_image_moves_with_the_joints(body_model, pose_fn):
    """A dot painted at a joint's pixel lands at the augmented joint's pixel."""
    persons = _make_persons(pose_fn, K, n=1, seed=4)
    rest = RestRoot.from_body_model(body_model)
    u, v = np.round(persons["joints_2d"][0, 0]).astype(int)
    assert 2 <= u < 318 and 2 <= v < 238, "fixture joint must be in the image"
    persons["joints_2d"][0, 0] = (u, v)  # exactly on a pixel centre
    image = np.zeros((240, 320, 3), np.uint8)
    image[v - 1 : v + 2, u - 1 : u + 2] = 255  # a 3x3 dot centred on (u, v)
    for params in PARAMS:
        img, _, p2 = augment.augment_frame(image, K, persons, params, 256, rest)
        grey = img.sum(-1)
        ys, xs = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
        centroid = np.array([(grey * xs).sum(), (grey * ys).sum()]) / grey.sum()
        np.testing.assert_allclose(centroid, p2["joints_2d"][0, 0], atol=0.5, err_msg=str(params))


def test_fit_keeps_aspect_and_pads():
    image = np.full((100, 200, 3), 200, np.uint8)
    persons = schema.stack_persons([])
    k = np.array([[100.0, 0, 99.5], [0, 100.0, 49.5], [0, 0, 1]], np.float32)
    img, k2, _ = augment.augment_frame(image, k, persons, augment.AugmentParams(), 64, None)
    # 200 px wide -> 64: zoom 0.32; the 100 px tall image fills rows 16..47 of the square.
    np.testing.assert_allclose(k2[0, 0], 32.0, rtol=1e-6)
    np.testing.assert_allclose(k2[:2, 2], [31.5, 31.5], atol=1e-5)  # centre stays centred
    assert img[:15].max() == 0 and img[49:].max() == 0
    np.testing.assert_allclose(img[18:46], 200 / 255, atol=1e-6)


def test_color_jitter():
    rng = np.random.default_rng(0)
    img = rng.uniform(0.1, 0.6, (8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(augment.color_jitter(img, (1.0, 1.0, 1.0)), img, atol=1e-6)
    np.testing.assert_allclose(augment.color_jitter(img, (1.5, 1.0, 1.0)), img * 1.5, atol=1e-6)
    grey = augment.color_jitter(img, (1.0, 1.0, 0.0))
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-6)


def test_sample_params_ranges():
    from configs import default

    cfg = default.get_config().data.augment
    rng = np.random.default_rng(0)
    draws = [augment.sample_params(rng, cfg, 512) for _ in range(400)]
    scales = np.array([d.scale for d in draws])
    assert scales.min() >= cfg.scale[0] and scales.max() <= cfg.scale[1]
    rots = np.abs([d.rotation for d in draws])
    assert rots.max() <= np.radians(cfg.rotation_degrees) + 1e-9
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    cfg.enabled = False
    assert augment.sample_params(rng, cfg, 512).is_identity


def test_bad_intrinsics_are_named():
    with pytest.raises(ValueError, match="intrinsics"):
        augment.frame_transform((10, 10), np.zeros((3, 3)), augment.AugmentParams(), 8)


def test_uint8_jitter_matches_float_jitter():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    factors = (1.15, 0.85, 0.7)
    got = augment.warp_image(image, np.eye(3), 16, color=factors).astype(np.float64)
    want = augment.color_jitter(image / 255.0, factors) * 255.0
    assert np.max(np.abs(got - want)) <= 1.0  # uint8 rounding
    assert np.max(np.abs(got - image)) > 10  # and it did change the colours


def test_visibility_recomputed_after_crop_and_shift():
    """Hand-computed: a 100x100 image into a 100 px input. Zoom 2 about the centre maps
    u -> 2 u - 49.5 (centre 49.5 fixed); a point is inside when -0.5 <= u' < 99.5."""
    n = 1
    p = schema.stack_persons([schema.empty_person() for _ in range(n)])
    us = np.array([10.0, 30.0, 74.0, 74.5, 24.5])  # -> -29.5, 10.5, 98.5, 99.5, -0.5
    p["joints_2d"][0, :5] = np.stack([us, np.full(5, 49.5)], -1)
    p["visibility"][0, :5] = 1.0
    j = [1, 5, 30, 44, 50]  # superset points, any five
    p["keypoints_2d"][0, j] = np.stack([us, np.full(5, 49.5)], -1)
    p["keypoints_2d_visibility"][0, j] = 1.0
    p["has_keypoints_2d"][0] = True
    k = np.array([[100.0, 0, 49.5], [0, 100.0, 49.5], [0, 0, 1]])
    tr = augment.frame_transform((100, 100), k, augment.AugmentParams(scale=2.0), 100)
    out = augment.transform_persons(p, tr, None)
    np.testing.assert_allclose(out["joints_2d"][0, :5, 0], [-29.5, 10.5, 98.5, 99.5, -0.5])
    want = [0.0, 1.0, 1.0, 0.0, 1.0]
    np.testing.assert_array_equal(out["visibility"][0, :5], want)
    np.testing.assert_array_equal(out["keypoints_2d_visibility"][0, j], want)
    assert out["visibility"][0, 5:].sum() == 0  # unlabelled joints stay unlabelled
    # A shift of +30 px: u -> u + 30, so 69 stays (99) and 70 leaves (100).
    p["joints_2d"][0, :2, 0] = (69.0, 70.0)
    tr = augment.frame_transform((100, 100), k, augment.AugmentParams(shift=(30.0, 0.0)), 100)
    out = augment.transform_persons(p, tr, None)
    np.testing.assert_array_equal(out["visibility"][0, :2], [1.0, 0.0])
    # A 90 degree roll about the principal point (49.5, 49.5): (u, v) -> (99 - v, u), so a point
    # at v = 49.5 keeps u' = 49.5 and v' = u: u = 120 (outside before) stays outside.
    p["joints_2d"][0, :2] = ((10.0, 49.5), (120.0, 49.5))
    tr = augment.frame_transform((100, 100), k, augment.AugmentParams(rotation=np.pi / 2), 100)
    out = augment.transform_persons(p, tr, None)
    np.testing.assert_allclose(out["joints_2d"][0, :2], [[49.5, 10.0], [49.5, 120.0]], atol=1e-6)
    np.testing.assert_array_equal(out["visibility"][0, :2], [1.0, 0.0])
