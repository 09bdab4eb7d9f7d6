"""Detection quality: precision, recall and F1 of the people a model finds, false detections per
person-free frame, and the centre-score threshold of best F1.

Predictions are matched to GT people per frame with AGORA's greedy 2D matcher
(``agora_matching.match_image``: spectral cost of the 24 SMPL joints, joint-box IoU gate 0.1), so
a detection counts as a person found only where its 2D joints overlap a real person. Per frame:
true positives = matched pairs, false positives = unmatched predictions, misses = valid GT left
unmatched (AGORA's ``isValid`` rule: occlusion <= 90%; an invalid GT is neither found nor
missed). Precision = TP / (TP + FP), recall = TP / (TP + misses), F1 their harmonic mean; a ratio
of nothing (0 / 0) is 0 (scikit-learn's ``zero_division=0``).

The threshold sweep scores every frame once with all top-k peaks kept (their centre scores) and
re-applies each candidate threshold on the host: a detection at threshold t is a peak with
score > t (``SIAM.select_tokens``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
from jaxtyping import Bool, Float

from siam_jax.evaluation import agora_matching

# AGORA's validity rule for GT people (agora_evaluation matching.py: get_matching).
MAX_OCCLUSION = 90.0
# Candidate centre-score thresholds of the sweep (the centre head's sigmoid scores are in (0, 1)).
THRESHOLD_GRID = tuple(float(t) for t in np.round(np.arange(0.05, 0.96, 0.05), 2))


@dataclasses.dataclass(frozen=True)
class FrameDetections:
    """One frame's candidate detections (all top-k peaks) and its GT people."""

    scores: Float[np.ndarray, " k"]  # centre score of each candidate
    joints_2d: Float[np.ndarray, "k j 2"]  # predicted 2D joints (pixels), SMPL order first 24
    gt_joints_2d: Float[np.ndarray, "n j 2"]  # GT 2D joints in the same pixels
    gt_valid: Bool[np.ndarray, " n"]  # GT people that must be found (occlusion <= 90%)


@dataclasses.dataclass
class DetectionCounts:
    """Running totals; ``empty_frames`` / ``empty_false`` count frames without any GT person and
    the detections made on them."""

    true_positives: int = 0
    false_positives: int = 0
    misses: int = 0
    empty_frames: int = 0
    empty_false: int = 0

    def add(self, pred_joints_2d: Sequence[np.ndarray], frame: FrameDetections) -> None:
        """Matches the frame's kept predictions ``pred_joints_2d`` to its GT people."""
        n_pred, n_gt = len(pred_joints_2d), len(frame.gt_joints_2d)
        if n_gt == 0:
            self.empty_frames += 1
            self.empty_false += n_pred
            self.false_positives += n_pred
            return
        if n_pred == 0:
            self.misses += int(np.sum(frame.gt_valid))
            return
        m = agora_matching.match_image(
            list(pred_joints_2d), list(frame.gt_joints_2d), frame.gt_valid
        )
        self.true_positives += len(m.pairs)
        self.false_positives += len(m.false_positives)
        self.misses += len(m.misses)

    def metrics(self) -> dict[str, float]:
        """``precision``, ``recall``, ``f1`` and ``false_detections_per_empty_frame`` (0 without
        person-free frames)."""
        tp, fp, fn = self.true_positives, self.false_positives, self.misses
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_empty = self.empty_false / self.empty_frames if self.empty_frames else 0.0
        return {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "false_detections_per_empty_frame": float(per_empty),
        }


def gt_valid(occlusion: Float[np.ndarray, " n"], valid: Bool[np.ndarray, " n"]) -> np.ndarray:
    """AGORA's rule: a GT person must be found when ``valid`` and ``0 <= occlusion <= 90``."""
    occ = np.asarray(occlusion, np.float64)
    return np.asarray(valid, bool) & (occ >= 0) & (occ <= MAX_OCCLUSION)


def evaluate_at(frames: Iterable[FrameDetections], threshold: float) -> dict[str, float]:
    """Detection metrics keeping the candidates with score > ``threshold``."""
    counts = DetectionCounts()
    for f in frames:
        keep = np.asarray(f.scores) > threshold
        counts.add([j for j, k in zip(f.joints_2d, keep, strict=True) if k], f)
    out = counts.metrics()
    out["threshold"] = float(threshold)
    return out


def sweep_thresholds(
    frames: Sequence[FrameDetections], thresholds: Sequence[float] = THRESHOLD_GRID
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """``(best, rows)``: the metrics at each threshold and those of the best F1. Ties go to the
    higher threshold (fewer detections on what the validation frames do not show, e.g. noise)."""
    if not thresholds:
        raise ValueError("sweep_thresholds: no candidate thresholds")
    rows = [evaluate_at(frames, t) for t in sorted(float(t) for t in thresholds)]
    best = max(rows, key=lambda r: (r["f1"], r["threshold"]))
    return best, rows
