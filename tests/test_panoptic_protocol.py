"""CRMH's CMU-Panoptic protocol on hand-computed fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from siam_jax.evaluation import panoptic


def _j24(seed=0):
    rng = np.random.default_rng(seed)
    k = np.ones((24, 4))
    k[:, :3] = rng.normal(size=(24, 3)) * 0.3 + np.array([0.0, 0.0, 4.0])
    return k


def test_j24_to_h36m_roots_on_the_pelvis():
    k = _j24()
    k[5, 3] = 0.0  # J24 5 = L ankle = H36M joint 3 (J24_TO_H36M[3] == 5)
    gt, vis = panoptic.gt_h36m_from_j24(k[None])
    np.testing.assert_allclose(gt[0, 0], 0.0)  # H36M 0 is J24 14, the root
    np.testing.assert_allclose(gt[0, 7], k[16, :3] - k[14, :3])  # H36M 7 (spine) = J24 16
    assert vis[0, 3] == 0 and vis[0].sum() == 16
    with pytest.raises(ValueError, match="24, 4"):
        panoptic.gt_h36m_from_j24(np.zeros((1, 17, 4)))


def test_crmh_protocol_by_hand():
    acc = panoptic.PanopticAccumulator()
    a = _j24(0)
    b = a.copy()
    b[1, 0] += 0.17  # J24 1 = R knee = H36M joint 5: 170 mm on one of 17 joints
    a17, _ = panoptic.gt_h36m_from_j24(a[None])
    # Image 1 (haggling): two GT, one prediction (A, anywhere in space: it is root-centred).
    # Both GT pair with it (not one-to-one, a CRMH "mismatch"): A 0 mm, B 170/17 = 10 mm; the
    # image's 5 mm weighs 2 people.
    err = acc.add_image("160422_haggling1-00_16_00000001.jpg", a17 + 1.5, kpts3d=np.stack([a, b]))
    assert err == pytest.approx(5.0)
    # Image 2 (haggling): GT C = A with H36M joint 3 off by 340 mm and joint 7 invisible, where the
    # prediction is 5 m off: the invisible joint counts 0 but stays in the mean over 17 joints,
    # so 340 / 17 = 20 mm (not 340 / 16 = 21.25).
    c17 = a17.copy()
    c17[0, 3, 2] += 0.34
    vis = np.ones((1, 17))
    vis[0, 7] = 0
    pred = a17.copy()
    pred[0, 7] += 5.0
    assert acc.add_image("160422_haggling1-00_30_2", pred, gt17=c17, vis=vis) == pytest.approx(20.0)
    # Image 3 (mafia): GT X, Y; joint 10 invisible in Y, hence dropped from the pairing of both.
    # P0 = X with joint 10 moved 5 m, P1 = Y. Without glb_vis X would pair with P1 (0.3 m apart
    # on one joint against 5 m); with it X pairs with P0: X 5000/17 mm, Y 0 -> image 2500/17 mm.
    x17 = a17[0]
    y17 = x17.copy()
    y17[12, 0] += 0.3
    p0 = x17.copy()
    p0[10, 1] += 5.0
    vis = np.ones((2, 17))
    vis[1, 10] = 0
    gt = np.stack([x17, y17])
    plain = np.linalg.norm((x17 - np.stack([p0, y17])).reshape(2, -1), axis=-1)
    assert plain.argmin() == 1  # the unmasked distance would pick P1
    e3, paired, mismatch = panoptic.image_mpjpe(gt, vis, np.stack([p0, y17]))
    assert list(paired) == [0, 1] and not mismatch
    assert e3 == pytest.approx(2500.0 / 17)
    acc.add_image("160422_mafia2", np.stack([p0, y17]), gt17=gt, vis=vis)
    # No prediction: the one GT person is charged the 150 mm miss penalty.
    assert acc.add_image("160906_pizza1", np.zeros((0, 17, 3)), kpts3d=a[None]) == 150.0
    r = acc.result()
    assert r["haggling"] == pytest.approx((5.0 * 2 + 20.0) / 3)  # person-weighted: 10
    assert r["mafia"] == pytest.approx(2500.0 / 17)
    assert r["ultimatum"] is None and r["pizza"] == 150.0 and r["num_activities"] == 3
    assert r["mean"] == pytest.approx((10.0 + 2500.0 / 17 + 150.0) / 3)
    assert r["num_mismatch"] == 1 and r["num_images_without_prediction"] == 1
    assert r["num_persons"] == 6 and r["num_missed_persons"] == 1


def test_image_without_prediction_costs_150mm_per_person():
    """Image 1: two GT people predicted exactly (0 mm each); image 2: three GT people and no
    prediction (150 mm each). Person-weighted mean: (2 * 0 + 3 * 150) / 5 = 90 mm."""
    k = _j24()
    two = np.stack([k, k + np.array([1.0, 0, 0, 0])])
    acc = panoptic.PanopticAccumulator()
    pred = panoptic.gt_h36m_from_j24(two)[0]
    assert acc.add_image("160422_haggling1-00_16_1", pred, kpts3d=two) == pytest.approx(0.0)
    three = np.stack([k, k, k])
    acc.add_image("160422_haggling1-00_16_2", np.zeros((0, 17, 3)), kpts3d=three)
    r = acc.result()
    assert r["haggling"] == pytest.approx(90.0) and r["mean"] == pytest.approx(90.0)
    assert r["num_missed_persons"] == 3 and r["num_persons"] == 5


def test_images_are_scored_under_their_sequence_activity():
    """The accumulator files an image under the activity its CRMH sequence name says, and
    refuses a sequence of none of the four (the dataset's ``panoptic_activity``)."""
    k = _j24()
    pred = panoptic.gt_h36m_from_j24(k[None])[0] + 1.0  # a shifted copy: root-aligned, error 0
    acc = panoptic.PanopticAccumulator()
    acc.add_image("160422_ultimatum1-00_16_00003000.jpg", pred, kpts3d=k[None])
    assert acc.counts() == {"haggling": 0, "mafia": 0, "ultimatum": 1, "pizza": 0}
    assert acc.result()["ultimatum"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="activities"):
        acc.add_image("171204_pose1", pred, kpts3d=k[None])
