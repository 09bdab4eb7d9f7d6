"""3DPW protocols on hand-computable fixtures.

The H36M regressor is the 17x17 identity on a 17-vertex "mesh", so vertex i is H36M joint i and
the LSP-14 joints are vertices H36M_TO_J14 = [6,5,4,1,2,3,16,15,14,11,12,13,8,10]: LSP R hip
(index 2) is vertex 4, L hip (3) vertex 1, LSP R ankle (0) vertex 6; the H36M pelvis is vertex 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from siam_jax.evaluation import pw3d

REG = np.eye(17, dtype=np.float32)


def _gt(seed=0):
    return np.random.default_rng(seed).normal(size=(17, 3)).astype(np.float32) * 0.3


def _errs(pred, gt, protocol):
    e = pw3d.pw3d_errors(pred[None], gt[None], REG, protocol=protocol)
    return {k: 1000.0 * float(v[0]) for k, v in e.items()}  # mm


@pytest.mark.parametrize("protocol", pw3d.PROTOCOLS)
def test_translation_is_no_error(protocol):
    gt = _gt()
    e = _errs(gt + np.float32([0.5, -1.0, 3.0]), gt, protocol)
    assert max(e.values()) < 1e-3


def test_moving_the_regressed_pelvis_separates_the_protocols():
    gt = _gt()
    pred = gt.copy()
    pred[0, 1] += 0.1  # vertex 0 = H36M pelvis, not one of the 14 LSP joints
    vibe = _errs(pred, gt, "romp_vibe")
    # romp_vibe roots on the LSP hips: the 14 joints are untouched; PVE = 100 mm / 17 vertices.
    assert vibe["mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert vibe["pve"] == pytest.approx(100.0 / 17, abs=1e-3)
    spin = _errs(pred, gt, "spin")
    # spin roots on the pelvis: all 14 joints move by 100 mm relative to it; the pelvis vertex
    # itself stays at the root, so 16 of 17 vertices are 100 mm off.
    assert spin["mpjpe"] == pytest.approx(100.0, abs=1e-3)
    assert spin["pve"] == pytest.approx(1600.0 / 17, abs=1e-3)
    assert vibe["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert spin["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)


def test_moving_one_hip_shifts_the_romp_vibe_root():
    gt = _gt()
    pred = gt.copy()
    pred[4, 0] += 0.28  # LSP R hip
    # romp_vibe: the mid-hip root moves 140 mm, so every joint is 140 mm off (the R hip itself
    # +280 - 140 = +140 mm): MPJPE 140. spin: only that joint, 280 mm / 14 = 20 mm.
    assert _errs(pred, gt, "romp_vibe")["mpjpe"] == pytest.approx(140.0, abs=1e-3)
    assert _errs(pred, gt, "spin")["mpjpe"] == pytest.approx(20.0, abs=1e-3)


def test_accumulator_reports_mm_with_protocol():
    gt = _gt()
    off = gt.copy()
    off[6, 0] += 0.14  # LSP R ankle: 140 mm / 14 joints = 10 mm MPJPE, 140 / 17 mm PVE
    acc = pw3d.Pw3dAccumulator(REG, "romp_vibe")
    acc.add(np.stack([gt, off]), np.stack([gt, gt]))
    acc.add(off[None], gt[None], valid=np.array([False]))  # dropped
    acc.add_unmatched(2)
    r = acc.result()
    assert r["protocol"] == "romp_vibe" and r["num_persons"] == 2 and r["num_unmatched"] == 2
    assert r["MPJPE"] == pytest.approx(5.0, abs=1e-3)  # mean of 0 and 10
    assert r["PVE"] == pytest.approx(70.0 / 17, abs=1e-3)
    with pytest.raises(ValueError, match="protocol"):
        pw3d.Pw3dAccumulator(REG, "vibe")
    with pytest.raises(ValueError, match="regressor"):
        acc.add(np.zeros((1, 20, 3)), np.zeros((1, 20, 3)))


def test_gt_gender_and_matching():
    assert pw3d.gt_body_gender("romp_vibe", "f") == "neutral"
    assert pw3d.gt_body_gender("spin", "f") == "female"
    assert pw3d.gt_body_gender("spin", "m") == "male"
    rng = np.random.default_rng(0)
    a = rng.uniform([100, 100], [300, 600], size=(24, 2))
    b = rng.uniform([700, 100], [900, 600], size=(24, 2))
    assert sorted(pw3d.match_persons([b + 2.0, a - 1.0], [a, b])) == [(0, 1), (1, 0)]
    assert pw3d.match_persons([], [a]) == []
