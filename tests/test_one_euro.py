"""The One-Euro filter against its equations (Casiez, Roussel, Vogel, CHI 2012), and per-track
smoothing on synthetic tracks."""

import math

import numpy as np

from siam_jax.body import make_procedural_body_model
from siam_jax.body.rotations import axis_angle_to_matrix
from siam_jax.inference.one_euro import OneEuroFilter
from siam_jax.inference.predictor import FramePrediction
from siam_jax.inference.smoothing import Smoother, SmoothingConfig


def _alpha(cutoff, rate):
    # The paper: alpha = 1 / (1 + tau / T_e), tau = 1 / (2 pi f_c), T_e = 1 / rate.
    return 1.0 / (1.0 + (1.0 / (2.0 * math.pi * cutoff)) * rate)


def test_step_response_without_speed_term_is_exponential():
    # beta = 0: a fixed cutoff, so a unit step at sample 1 gives x^_i = 1 - (1 - alpha)^i.
    rate, fc = 30.0, 1.0
    a = 2 * math.pi / (2 * math.pi + 30.0)  # alpha(1 Hz) at 30 Hz, by hand
    assert abs(a - _alpha(fc, rate)) < 1e-15
    f = OneEuroFilter(rate, min_cutoff=fc, beta=0.0)
    out = [float(f(np.array(x))) for x in [0.0] + [1.0] * 8]
    assert out[0] == 0.0
    np.testing.assert_allclose(out[1:], [1 - (1 - a) ** i for i in range(1, 9)], rtol=1e-12)


def test_step_response_first_samples_with_speed_term():
    rate, mc, beta, dc = 30.0, 1.0, 0.1, 1.0
    f = OneEuroFilter(rate, min_cutoff=mc, beta=beta, d_cutoff=dc)
    got = [float(f(np.array(x))) for x in (0.0, 1.0, 1.0)]
    # Sample 0 initialises: x^0 = 0, dx^0 = 0. Sample 1: dx1 = (1 - 0) * 30 = 30,
    ad = 2 * math.pi / (2 * math.pi + 30.0)  # 6.283185 / 36.283185 = 0.173171
    dx1 = ad * 30.0  # 5.19512
    a1 = _alpha(mc + beta * dx1, rate)  # cutoff 1.519512 Hz -> 9.54737 / 39.54737 = 0.241416
    x1 = a1 * 1.0
    assert abs(ad - 0.173171) < 1e-5 and abs(a1 - 0.241416) < 1e-5
    # Sample 2: dx2 = (1 - x1) * 30, dx^2 = ad dx2 + (1 - ad) dx^1.
    dx2 = ad * (1.0 - x1) * 30.0 + (1 - ad) * dx1
    a2 = _alpha(mc + beta * dx2, rate)
    x2 = a2 * 1.0 + (1 - a2) * x1
    np.testing.assert_allclose(got, [0.0, x1, x2], rtol=1e-12)


def _prediction(global_orient, body_pose, betas, transl):
    n = len(transl)
    k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    return FramePrediction(
        intrinsics=k, image_size=(480, 640), scores=np.ones(n, np.float32),
        global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl,
        vertices=np.zeros((n, 6890, 3), np.float32), joints_3d=np.zeros((n, 24, 3), np.float32),
        joints_2d=np.zeros((n, 24, 2), np.float32), max_score=1.0,
    )  # fmt: skip


def _acc(x):
    return np.abs(np.diff(np.asarray(x), n=2, axis=0)).mean()


def test_smoothing_reduces_acceleration_of_a_jittered_track():
    rng = np.random.default_rng(0)
    body = make_procedural_body_model(0)
    t = np.arange(40) / 30.0
    smoother = Smoother(body, fps=30.0, cfg=SmoothingConfig(min_cutoff=1.0, beta=0.05))
    raw_t, smooth_t, raw_j, smooth_j = [], [], [], []
    for i in range(len(t)):
        transl = np.array([[0.5 * t[i], 0.1, 4.0]]) + rng.normal(scale=0.03, size=(1, 3))
        go = np.array([[math.pi, 0.0, 0.0]]) + rng.normal(scale=0.05, size=(1, 3))
        pose = rng.normal(scale=0.05, size=(1, 69))
        betas = rng.normal(scale=0.1, size=(1, 10))
        pred = _prediction(go, pose, betas, transl)
        out = smoother(pred, np.array([3]))
        raw_t.append(transl[0]), smooth_t.append(out.transl[0])
        raw_j.append(np.asarray(body(betas, pose.reshape(1, 23, 3), go, transl).joints[0, :24]))
        smooth_j.append(out.joints_3d[0])
        # The smoothed joints are the body model of the smoothed parameters, projected by K.
        uv = out.joints_3d[0] @ pred.intrinsics.T
        np.testing.assert_allclose(out.joints_2d[0], uv[:, :2] / uv[:, 2:], rtol=1e-4)
    assert _acc(smooth_t) < 0.5 * _acc(raw_t)
    assert _acc(smooth_j) < 0.5 * _acc(raw_j)


def test_pose_smoothing_is_safe_across_the_axis_angle_wrap():
    # A joint turned by ~pi about x, written alternately as +(pi - e) x and -(pi - e) x: the same
    # rotation (up to 2e), far apart as vectors. Filtering the vectors would pull the pose
    # towards the identity; quaternions with sign continuity keep it near the true rotation.
    body = make_procedural_body_model(0)
    smoother = Smoother(body, fps=30.0)
    for i in range(10):
        e = 0.02 if i % 2 else -0.02
        angle = math.pi - abs(e)
        go = np.array([[angle if i % 2 else -angle, 0.0, 0.0]])
        pred = _prediction(go, np.zeros((1, 69)), np.zeros((1, 10)), np.array([[0, 0, 4.0]]))
        out = smoother(pred, np.array([0]))
        r = axis_angle_to_matrix(np.asarray(out.global_orient[0], np.float64))
        truth = axis_angle_to_matrix(np.array([math.pi, 0.0, 0.0]))
        err = math.degrees(math.acos(np.clip((np.trace(r.T @ truth) - 1) / 2, -1, 1)))
        assert err < 3.0, (i, err)
