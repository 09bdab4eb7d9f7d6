"""siam_jax.body.rotations against closed forms and scipy (independent implementation)."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from siam_jax.body import rotations as R

vec3 = st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3).filter(
    lambda v: np.linalg.norm(v) > 1e-3
)


def _aa(axis, angle):
    axis = np.asarray(axis, np.float64)
    return axis / np.linalg.norm(axis) * angle


@settings(max_examples=40, deadline=None)
@given(vec3, st.floats(0.0, np.pi - 1e-3))
def test_axis_angle_matches_scipy_and_round_trips(axis, angle):
    aa = _aa(axis, angle).astype(np.float32)
    mat = np.asarray(R.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(mat, Rotation.from_rotvec(aa).as_matrix(), atol=2e-6)
    np.testing.assert_allclose(np.asarray(R.matrix_to_axis_angle(mat)), aa, atol=2e-5)


@settings(max_examples=30, deadline=None)
@given(vec3, st.floats(0.0, 1e-3))
def test_round_trip_near_zero(axis, angle):
    aa = _aa(axis, angle).astype(np.float32)
    back = np.asarray(R.matrix_to_axis_angle(R.axis_angle_to_matrix(aa)))
    np.testing.assert_allclose(back, aa, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(vec3, st.floats(np.pi - 1e-3, np.pi))
def test_round_trip_near_pi(axis, angle):
    # At pi, aa and -aa are the same rotation: compare matrices, and the angle.
    aa = _aa(axis, angle)
    mat = Rotation.from_rotvec(aa).as_matrix().astype(np.float32)
    back = np.asarray(R.matrix_to_axis_angle(mat))
    np.testing.assert_allclose(np.linalg.norm(back), angle, atol=1e-4)
    np.testing.assert_allclose(np.asarray(R.axis_angle_to_matrix(back)), mat, atol=1e-5)


def test_exactly_pi_and_identity():
    for axis in np.eye(3):
        mat = Rotation.from_rotvec(axis * np.pi).as_matrix()
        back = np.asarray(R.matrix_to_axis_angle(mat))
        np.testing.assert_allclose(np.abs(back), axis * np.pi, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(R.matrix_to_axis_angle(jnp.eye(3))), np.zeros(3))


def test_rot6d_layout_is_spin():
    # SPIN: the 6-vector is R[:, :2] flattened row-major = [R00, R01, R10, R11, R20, R21].
    mat = Rotation.from_rotvec([0.3, -1.2, 0.7]).as_matrix().astype(np.float32)
    six = np.asarray(R.matrix_to_rot6d(mat))
    np.testing.assert_array_equal(six, mat[:, :2].reshape(6))
    np.testing.assert_allclose(np.asarray(R.rot6d_to_matrix(six)), mat, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=6, max_size=6))
def test_rot6d_gives_rotation_by_gram_schmidt(x):
    x = np.asarray(x, np.float64)
    a1, a2 = x[[0, 2, 4]], x[[1, 3, 5]]
    if np.linalg.norm(a1) < 1e-2 or np.linalg.norm(np.cross(a1, a2)) < 1e-2:
        return
    mat = np.asarray(R.rot6d_to_matrix(x.astype(np.float32)), np.float64)
    np.testing.assert_allclose(mat @ mat.T, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(mat), 1.0, atol=1e-5)
    np.testing.assert_allclose(mat[:, 0], a1 / np.linalg.norm(a1), atol=1e-5)
    # the second column lies in span(a1, a2) on a2's side
    assert np.dot(mat[:, 1], a2) > 0
    np.testing.assert_allclose(np.dot(mat[:, 2], a2), 0.0, atol=1e-5)


def test_batch_shapes():
    aa = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    mat = R.axis_angle_to_matrix(aa)
    assert mat.shape == (2, 5, 3, 3)
    assert R.matrix_to_axis_angle(mat).shape == (2, 5, 3)
    assert R.matrix_to_rot6d(mat).shape == (2, 5, 6)
    assert R.rot6d_to_matrix(R.matrix_to_rot6d(mat)).shape == (2, 5, 3, 3)


def test_finite_gradients_at_zero():
    zero = jnp.zeros(3)
    g = jax.jacobian(R.axis_angle_to_matrix)(zero)
    assert np.all(np.isfinite(g))
    # d R / d aa at 0 is the skew generator: dR/da_x = [[0,0,0],[0,0,-1],[0,1,0]].
    np.testing.assert_allclose(np.asarray(g[..., 0]), [[0, 0, 0], [0, 0, -1], [0, 1, 0]])
    g2 = jax.jacobian(R.matrix_to_axis_angle)(jnp.eye(3))
    assert np.all(np.isfinite(g2))
    g3 = jax.grad(lambda a: R.matrix_to_axis_angle(R.axis_angle_to_matrix(a)).sum())(zero)
    np.testing.assert_allclose(np.asarray(g3), np.ones(3), atol=1e-6)
    six = R.matrix_to_rot6d(jnp.eye(3))
    assert np.all(np.isfinite(jax.jacobian(R.rot6d_to_matrix)(six)))


def test_host_arrays_stay_numpy_and_match_scipy_in_float64():
    """numpy in, numpy out (no JAX dispatch in host code), float64 kept, same rotations as scipy."""
    rng = np.random.default_rng(0)
    aa = np.concatenate([rng.normal(size=(40, 3)) * 1.2, rng.normal(size=(10, 3)) * 1e-5])
    mat = R.axis_angle_to_matrix(aa)
    assert type(mat) is np.ndarray and mat.dtype == np.float64
    np.testing.assert_allclose(mat, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    back = R.matrix_to_axis_angle(mat)
    assert type(back) is np.ndarray
    np.testing.assert_allclose(back, Rotation.from_matrix(mat).as_rotvec(), atol=1e-12)
    six = R.matrix_to_rot6d(mat)
    assert type(six) is np.ndarray
    np.testing.assert_allclose(R.rot6d_to_matrix(six), mat, atol=1e-12)
    # The JAX path is the same formula: equal numbers in float32.
    a32 = aa.astype(np.float32)
    np.testing.assert_allclose(
        R.axis_angle_to_matrix(a32), np.asarray(R.axis_angle_to_matrix(jnp.asarray(a32))), atol=1e-6
    )
    # Lists and integers are host input too.
    quarter = R.axis_angle_to_matrix([0, 0, 0])
    assert type(quarter) is np.ndarray and quarter.dtype == np.float64
    np.testing.assert_array_equal(quarter, np.eye(3))


def test_float64_round_trip_including_near_pi():
    """The host (numpy float64) path the dataset builders use, to 1e-9."""
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(200, 3))
    aa[:3] = [[np.pi - 1e-6, 0, 0], [0, 0, 1e-9], [0, 0, 0]]
    rot = R.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R.axis_angle_to_matrix(R.matrix_to_axis_angle(rot)), rot, atol=1e-9)
    np.testing.assert_allclose(
        rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )
