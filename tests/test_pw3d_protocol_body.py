"""3DPW protocol with the real siam_jax.body model (procedural SMPL and its H36M regressor)."""

from __future__ import annotations

import numpy as np

from siam_jax import body
from siam_jax.evaluation import pw3d


def test_pw3d_with_body_model():
    model = body.make_procedural_body_model(seed=0)
    assert model.h36m_regressor is not None, "the procedural model carries an H36M regressor"
    rng = np.random.default_rng(0)
    pose = (rng.normal(size=(2, 23, 3)) * 0.2).astype(np.float32)
    betas = (rng.normal(size=(2, 10)) * 0.5).astype(np.float32)
    go = np.zeros((2, 3), np.float32)
    gt = model(betas=betas, body_pose=pose, global_orient=go, transl=np.zeros((2, 3), np.float32))
    moved = model(
        betas=betas,
        body_pose=pose,
        global_orient=go,
        transl=np.float32([[0.3, -0.1, 4.0], [1.0, 0.0, 9.0]]),
    )
    reg = np.asarray(model.h36m_regressor)
    np.testing.assert_allclose(
        pw3d.regress_h36m(gt.vertices, reg), model.regress_h36m(gt.vertices), atol=1e-5
    )
    for protocol in pw3d.PROTOCOLS:
        e = pw3d.pw3d_errors(moved.vertices, gt.vertices, reg, protocol=protocol)
        for v in e.values():
            assert float(np.max(v)) < 1e-5  # a translation is no error
    # A different body shape is an error under both protocols, and PA-MPJPE <= MPJPE.
    other = model(betas=-betas, body_pose=pose, global_orient=go)
    e = pw3d.pw3d_errors(other.vertices, gt.vertices, reg, protocol="romp_vibe")
    assert np.all(np.asarray(e["pve"]) > 1e-3)
    assert np.all(np.asarray(e["pa_mpjpe"]) <= np.asarray(e["mpjpe"]) + 1e-6)
