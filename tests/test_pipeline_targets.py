"""Centre targets: cells, heatmap, ordering, dropping and padding of persons."""

import numpy as np

from siam_jax.data import schema, targets


def _person(u, v, depth, box_h=64.0, has_3d=True):
    p = schema.empty_person()
    p["joints_2d"][:] = (u, v)
    p["joints_3d"][:, 2] = depth
    p["visibility"][:] = 1.0
    p["bbox"] = np.array([u - box_h / 4, v - box_h / 2, u + box_h / 4, v + box_h / 2])
    p["has_2d"] = True
    p["has_3d"] = p["has_smpl"] = has_3d
    p["betas"][0] = depth  # tag to recognise the person
    return p


K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])


def _build(persons, k=3, size=64, sigma_min=1.0):
    return targets.build_targets(schema.stack_persons(persons), K, size, k, sigma_min)


def test_cells_heatmap_and_order():
    t = _build([_person(40.0, 20.0, 5.0), _person(7.4, 60.0, 2.0)])
    # Nearest first: depth 2 then 5. Cell = nearest receptive-field centre 8c (models.tokens),
    # c = floor(u / 8 + 0.5) clipped to [0, 7]: (7.4, 60) -> (1, 7), (40, 20) -> (5, 3).
    np.testing.assert_array_equal(t["center_cells"][:2], [[1, 7], [5, 3]])
    np.testing.assert_array_equal(t["person_valid"], [True, True, False])
    np.testing.assert_array_equal(t["betas"][:, 0], [2.0, 5.0, 0.0])
    hm = t["center_heatmap"]
    assert hm.shape == (8, 8) and hm.dtype == np.float32
    assert hm[7, 1] == 1.0 and hm[3, 5] == 1.0
    assert hm.max() == 1.0
    # A Gaussian: value one cell away = exp(-1 / (2 sigma^2)) with sigma >= sigma_min.
    sigma = np.sqrt(-1.0 / (2.0 * np.log(hm[3, 6])))
    assert sigma >= 1.0 - 1e-6
    np.testing.assert_allclose(hm[3, 4], hm[3, 6], rtol=1e-6)
    np.testing.assert_allclose(hm[2, 5], hm[3, 6], rtol=1e-6)


def test_outside_and_shared_cells_are_dropped():
    t = _build(
        [
            _person(70.0, 20.0, 3.0),  # centre right of the image: dropped
            _person(20.0, 20.0, 6.0),  # same cell as the next, farther: dropped
            _person(21.0, 22.0, 4.0),
            _person(-0.4, 63.4, 9.0),  # just inside (pixel-centre convention)
        ]
    )
    np.testing.assert_array_equal(t["betas"][:, 0], [4.0, 9.0, 0.0])
    np.testing.assert_array_equal(t["center_cells"][:2], [[3, 3], [0, 7]])


def test_truncated_to_k_keeps_the_nearest():
    people = [_person(8.0 * i + 4, 30.0, float(10 - i)) for i in range(6)]
    t = _build(people, k=3)
    np.testing.assert_array_equal(t["betas"][:, 0], [5.0, 6.0, 7.0])
    assert t["person_valid"].all()


def test_2d_only_depth_from_box_height():
    # A 2D-only person with a tall box (near) sorts before a 3D person at 4 m.
    near2d = _person(10.0, 10.0, 0.0, box_h=60.0, has_3d=False)  # 100 * 1.7 / 60 = 2.8 m
    t = _build([_person(40.0, 40.0, 4.0), near2d])
    np.testing.assert_array_equal(t["betas"][:2, 0], [0.0, 4.0])


def test_larger_people_get_wider_gaussians():
    small = _build([_person(32.0, 32.0, 3.0, box_h=16.0)], sigma_min=0.1)["center_heatmap"]
    large = _build([_person(32.0, 32.0, 3.0, box_h=64.0)], sigma_min=0.1)["center_heatmap"]
    assert large.sum() > small.sum()
    assert small[4, 4] == large[4, 4] == 1.0


def test_gaussian_radius_hand_value():
    # CornerNet/CenterNet gaussian_radius for a 10x10 box, min_overlap 0.7 (the original formula,
    # smallest of the three roots): r3 = (-28 + sqrt(784 + 336)) / 2.
    np.testing.assert_allclose(targets.gaussian_radius(10, 10), (-28 + np.sqrt(1120)) / 2)


def test_no_people():
    t = _build([])
    assert not t["person_valid"].any() and not t["center_heatmap"].any()
    assert t["body_pose"].shape == (3, 23, 3)


def _gauss(cx, cy, sigma=1.0, n=8):
    """Closed-form Gaussian over an n x n map, cut to the 3-sigma window draw_gaussian writes."""
    yy, xx = np.mgrid[0:n, 0:n]
    g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    r = int(np.ceil(3 * sigma))
    return np.where((abs(xx - cx) <= r) & (abs(yy - cy) <= r), g, 0.0)


def _build_full(persons, k=3, **kw):
    return targets.build_targets(schema.stack_persons(persons), K, 64, k, 1.0, **kw)


def test_person_beyond_k_is_dont_care_not_background():
    # k = 1: the nearer person (8, 8) -> cell (1, 1) is kept; the farther (48, 48) -> cell (6, 6)
    # stands in the image: its window is don't-care where its Gaussian exceeds the target.
    near, far = _person(8.0, 8.0, 2.0, box_h=8.0), _person(48.0, 48.0, 5.0, box_h=8.0)
    t = _build_full([near, far], k=1)
    kept = _gauss(1, 1)
    np.testing.assert_allclose(t["center_heatmap"], kept, rtol=1e-6)
    np.testing.assert_array_equal(t["center_ignore"], _gauss(6, 6) > kept)
    # By hand: the far window is cells 3..7 (25 cells, clipped at 7); at (3, 3), (3, 4), (4, 3)
    # the near Gaussian is at least as high (d^2 8 vs 18, 13 vs 13), so 22 cells are don't care.
    assert t["center_ignore"][6, 6] and t["center_ignore"].sum() == 22
    assert (
        not t["center_ignore"][3, 3] and not t["center_ignore"][3, 4] and t["center_ignore"][4, 4]
    )
    assert not t["center_ignore"][1, 1]
    # With k = 2 both are targets and nothing is don't-care.
    t2 = _build_full([near, far], k=2)
    assert not t2["center_ignore"].any()


def test_unannotated_and_shared_cell_people():
    # A stored person without any annotation flag (a 3DPW actor with campose_valid 0) at
    # (40, 16) -> cell (5, 2): don't care around it, never a target.
    ghost = _person(40.0, 16.0, 3.0, box_h=8.0)
    for f in ("has_2d", "has_3d", "has_smpl"):
        ghost[f] = False
    t = _build_full([_person(8.0, 48.0, 2.0, box_h=8.0), ghost])
    assert t["person_valid"].tolist() == [True, False, False]
    np.testing.assert_array_equal(t["center_ignore"], _gauss(5, 2) > _gauss(1, 6))
    # Shared cell, same size: the dropped Gaussian never exceeds the kept one -> nothing ignored.
    t = _build_full([_person(20.0, 20.0, 2.0, box_h=8.0), _person(21.0, 22.0, 4.0, box_h=8.0)])
    assert t["person_valid"].sum() == 1 and not t["center_ignore"].any()


def test_ignore_boxes_cover_the_cells_whose_centre_they_hold():
    # Cell centres at 8c (models.tokens). Box x 20..36, y 20..30 holds centres x 24, 32 and y 24:
    # cells (3, 3), (4, 3). A 2 px box at 41..43 holds no centre: the cell of its centre, (5, 5).
    boxes = np.array([[20.0, 20.0, 36.0, 30.0], [41.0, 41.0, 43.0, 43.0]])
    t = _build_full([], ignore_boxes=boxes, all_persons_annotated=False)
    want = np.zeros((8, 8), bool)
    want[3, 3] = want[3, 4] = want[5, 5] = True
    np.testing.assert_array_equal(t["center_ignore"], want)
    assert not t["all_persons_annotated"]
    np.testing.assert_array_equal(targets.ignore_box_cells(np.zeros((0, 4)), 8), np.zeros((8, 8)))


def test_keypoint_superset_is_padded_into_the_slots():
    p = _person(16.0, 16.0, 2.0)
    p["keypoints_2d"][3] = (5.0, 6.0)
    p["keypoints_2d_visibility"][3] = 1.0
    p["has_keypoints_2d"] = True
    t = _build_full([p])
    assert t["keypoints_2d"].shape == (3, schema.NUM_KEYPOINTS, 2)
    np.testing.assert_array_equal(t["keypoints_2d"][0, 3], (5.0, 6.0))
    assert t["has_keypoints_2d"].tolist() == [True, False, False]
