"""Detection metrics on hand-made people (boxes of 2D joints), counts worked out by hand."""

import numpy as np
import pytest

from siam_jax.evaluation import detection


def _person(x1, y1, x2, y2):
    """24 joints on the box's diagonal: their joint box is exactly (x1, y1, x2, y2)."""
    return np.stack([np.linspace(x1, x2, 24), np.linspace(y1, y2, 24)], 1)


def _frame(scores, preds, gts, valid=None):
    return detection.FrameDetections(
        scores=np.asarray(scores, np.float64),
        joints_2d=np.asarray(preds, np.float64).reshape(len(preds), 24, 2),
        gt_joints_2d=np.asarray(gts, np.float64).reshape(len(gts), 24, 2),
        gt_valid=np.ones(len(gts), bool) if valid is None else np.asarray(valid, bool),
    )


G0, G1 = _person(10, 10, 50, 90), _person(100, 10, 140, 90)
FAR = _person(200, 200, 240, 280)
FRAMES = [
    # A: two people found (shifted by 2 and 3 px), one detection on nobody (IoU 0).
    _frame([0.9, 0.8, 0.3], [G0 + 2, G1 + 3, FAR], [G0, G1]),
    # B: one valid person missed; a 95%-occluded one (invalid) is neither found nor missed.
    _frame([], [], [G0, G1], valid=[True, False]),
    # C: one person found twice: the second detection is a false positive.
    _frame([0.9, 0.4], [G0 + 1, G0 + 4], [G0]),
    # D, E: person-free frames with two and no detections.
    _frame([0.35, 0.2], [FAR, G0], []),
    _frame([], [], []),
]


def test_counts_precision_recall_f1_and_empty_frames():
    # All candidates kept: TP = 2 + 1, FP = 1 + 1 + 2, misses = 1 (B's valid person).
    m = detection.evaluate_at(FRAMES, threshold=-1.0)
    assert m["precision"] == pytest.approx(3 / 7)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(6 / 11)  # 2 * (3/7)(3/4) / (3/7 + 3/4)
    assert m["false_detections_per_empty_frame"] == pytest.approx(2 / 2)


def test_threshold_sweep_picks_best_f1_highest_on_ties():
    # score > 0.5: A keeps 2 (TP 2), C keeps 1 (TP 1), D none: P = 1, R = 3/4, F1 = 6/7.
    m = detection.evaluate_at(FRAMES, 0.5)
    assert (m["precision"], m["recall"]) == (1.0, 0.75)
    assert m["f1"] == pytest.approx(6 / 7) and m["false_detections_per_empty_frame"] == 0.0
    # score > 0.25: A 3 (FP 1), C 2 (FP 1), D 1 (FP 1): P = 1/2, R = 3/4, F1 = 0.6.
    assert detection.evaluate_at(FRAMES, 0.25)["f1"] == pytest.approx(0.6)
    # F1 = 6/7 for every t in [0.4, 0.8); the grid's highest there is 0.75.
    best, rows = detection.sweep_thresholds(FRAMES)
    assert best["threshold"] == 0.75 and best["f1"] == pytest.approx(6 / 7)
    assert len(rows) == len(detection.THRESHOLD_GRID)
    # score > 0.8: A keeps only its 0.9 (A's second person missed): P = 1, R = 2/4.
    assert detection.evaluate_at(FRAMES, 0.8)["recall"] == pytest.approx(0.5)


def test_nothing_found_is_zero_and_agora_validity():
    m = detection.evaluate_at([_frame([], [], [G0])], 0.5)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    occ = np.array([0.0, 90.0, 90.5, -1.0])
    np.testing.assert_array_equal(
        detection.gt_valid(occ, [True, True, True, True]), [True, True, False, False]
    )
    with pytest.raises(ValueError):
        detection.sweep_thresholds(FRAMES, [])
