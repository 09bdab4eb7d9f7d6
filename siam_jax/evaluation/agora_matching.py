"""AGORA's greedy 2D matching of predicted to ground-truth people, quirks included.

A re-implementation (not a copy) of ``match_2d_greedy`` and ``get_bbx_overlap`` of the official
evaluator (pixelite1201/agora_evaluation, agora_evaluation/matching.py; PROTOCOLS.md section 1.4):

* cost of a (pred, gt) pair = ``np.linalg.norm(D, 2)`` of the 24x2 difference of the first 24
  2D joints, which for a 2-D array is the **spectral norm** (largest singular value), not the
  Frobenius norm (utils.py: l2_error);
* IoU gate 0.1 on the boxes around **all** rows of each 2D joint array, with the "+1" pixel
  convention for widths, heights and the intersection;
* greedy loop over the pairs by increasing cost with the official bookkeeping: a rejected
  low-IoU pair bumps a false-positive counter (pairs, not distinct predictions), a pair whose GT is
  invalid (occluded > 90 % or ``isValid`` False) marks that GT "invalid" without consuming the
  prediction.

Everything here is plain numpy in float64: the matching is a sequential, data-dependent loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

# matching.py: match_2d_greedy(iou_thresh=0.1), nkps = 24 (SMPL joints compared one to one).
IOU_THRESHOLD = 0.1
NUM_MATCH_KEYPOINTS = 24


def spectral_cost(pred: np.ndarray, gt: np.ndarray, nkps: int = NUM_MATCH_KEYPOINTS) -> float:
    """Largest singular value of the [nkps, 2] difference of the first ``nkps`` 2D joints."""
    d = np.asarray(pred, np.float64)[:nkps, :2] - np.asarray(gt, np.float64)[:nkps, :2]
    return float(np.linalg.svd(d, compute_uv=False)[0])


def bbox_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of the joint boxes with AGORA's +1 pixel convention (matching.py: get_bbx_overlap)."""
    p = np.asarray(pred, np.float64)[:, :2]
    g = np.asarray(gt, np.float64)[:, :2]
    (px1, py1), (px2, py2) = p.min(0), p.max(0)
    (gx1, gy1), (gx2, gy2) = g.min(0), g.max(0)
    iw = max(0.0, min(px2, gx2) - max(px1, gx1) + 1.0)
    ih = max(0.0, min(py2, gy2) - max(py1, gy1) + 1.0)
    inter = iw * ih
    area_p = (px2 - px1 + 1.0) * (py2 - py1 + 1.0)
    area_g = (gx2 - gx1 + 1.0) * (gy2 - gy1 + 1.0)
    return float(inter / (area_p + area_g - inter))


@dataclasses.dataclass(frozen=True)
class ImageMatching:
    """Outcome of matching one image.

    ``pairs``: (pred, gt) matches; ``false_positives``: unmatched predictions; ``misses``: valid
    GT left unmatched; ``invalid``: invalid GT (may repeat an index, as the official list does).
    """

    pairs: tuple[tuple[int, int], ...]
    false_positives: tuple[int, ...]
    misses: tuple[int, ...]
    invalid: tuple[int, ...]

    def official_tuples(self) -> list[tuple]:
        """The official ``bestMatch`` list.

        Order: (p, g) pairs, (p, 'falsePositive'), ('miss', g), ('invalid', g).
        """
        out: list[tuple] = list(self.pairs)
        out += [(p, "falsePositive") for p in self.false_positives]
        out += [("miss", g) for g in self.misses]
        out += [("invalid", g) for g in self.invalid]
        return out

    def gt_status(self, num_gt: int) -> list[int | str]:
        """Per GT index: matched prediction, 'miss' or 'invalid' (utils.get_matching_dict)."""
        status: dict[int, int | str] = {}
        for g in self.misses:
            status[g] = "miss"
        for g in self.invalid:
            status[g] = "invalid"
        for p, g in self.pairs:
            status[g] = p
        return [status[g] for g in range(num_gt)]


def _next_pair(costs, combs, preds, gts, op_assigned, gt_assigned, iou_thresh):
    """``(pred, gt, false_positive)``: the official inner ``while not found`` loop.

    Takes the cheapest untried pair (and marks it tried): a pair failing the IoU gate is a false
    positive, whoever it involves; a pair of two unassigned people passing it is a match; any
    other pair is skipped.
    """
    while True:
        if np.all(np.isinf(costs)):
            # The official loop logs 'something went wrong' and then spins on combs[0]
            # (np.argmin of all-inf is 0): it ends only if that pair fails the IoU gate.
            p, g = combs[0]
            if bbox_iou(preds[p], gts[g]) < iou_thresh:
                return p, g, True
            raise RuntimeError(
                "AGORA matching ran out of pairs (the official evaluator loops forever here)"
            )
        k = int(np.argmin(costs))
        p, g = combs[k]
        costs[k] = np.inf
        if bbox_iou(preds[p], gts[g]) < iou_thresh:
            return p, g, True
        if not op_assigned[p] and not gt_assigned[g]:
            return p, g, False


def _greedy(preds, gts, valid, iou_thresh, nkps) -> tuple[list[tuple[int, int]], list[int]]:
    """``(pairs, invalid GT)`` of the official outer loop (matching.py: match_2d_greedy)."""
    n_pred, n_gt = len(preds), len(gts)
    # itertools.product(predList, gtList) order: prediction-major, so ties go to the lower pred.
    combs = [(p, g) for p in range(n_pred) for g in range(n_gt)]
    costs = np.array([spectral_cost(preds[p], gts[g], nkps) for p, g in combs], np.float64)
    gt_assigned = np.zeros(n_gt, bool)
    op_assigned = np.zeros(n_pred, bool)
    pairs: list[tuple[int, int]] = []
    invalid: list[int] = []
    fp_counter = 0
    while gt_assigned.sum() < n_gt and op_assigned.sum() + fp_counter < n_pred:
        p, g, false_positive = _next_pair(
            costs, combs, preds, gts, op_assigned, gt_assigned, iou_thresh
        )
        fp_counter += int(false_positive)
        if not valid[g]:  # an invalid GT is marked, even by a false-positive pair
            gt_assigned[g] = True
            invalid.append(g)
        elif not false_positive:
            pairs.append((p, g))
            op_assigned[p] = gt_assigned[g] = True
    return pairs, invalid


def _joint_arrays(name: str, arrays: Sequence[np.ndarray], nkps: int) -> list[np.ndarray]:
    out = [np.asarray(a, np.float64) for a in arrays]
    for i, a in enumerate(out):
        if a.ndim != 2 or a.shape[1] < 2 or a.shape[0] < nkps:
            raise ValueError(
                f"{name} {i}: 2D joints must be [J>={nkps}, >=2] pixels, got {a.shape}"
            )
    return out


def match_image(
    pred_joints2d: Sequence[np.ndarray],
    gt_joints2d: Sequence[np.ndarray],
    valid: Sequence[bool] | np.ndarray,
    iou_thresh: float = IOU_THRESHOLD,
    nkps: int = NUM_MATCH_KEYPOINTS,
) -> ImageMatching:
    """Greedy-match predictions to GT people of one image exactly as AGORA's evaluator does.

    Args:
      pred_joints2d: per prediction a [J, 2] array of pixels (AGORA: 3840x2160), smplx SMPL order.
      gt_joints2d: per GT person a [J, 2] array in the same pixels and order.
      valid: per GT person, ``isValid & 0 <= occlusion <= 90`` (matching.py: get_matching).
    """
    preds = _joint_arrays("prediction", [np.asarray(p).squeeze() for p in pred_joints2d], nkps)
    gts = _joint_arrays("gt", gt_joints2d, nkps)
    valid = np.asarray(valid, bool).reshape(-1)
    if valid.shape[0] != len(gts):
        raise ValueError(f"valid has {valid.shape[0]} entries for {len(gts)} GT people")
    pairs, invalid = _greedy(preds, gts, valid, iou_thresh, nkps)
    matched_preds = {p for p, _ in pairs}
    matched_gts = {g for _, g in pairs}
    fps = tuple(p for p in range(len(preds)) if p not in matched_preds)
    misses = tuple(g for g in range(len(gts)) if g not in matched_gts and valid[g])
    # Unmatched invalid GT are appended again after the loop (so an index may appear twice).
    invalid += [g for g in range(len(gts)) if g not in matched_gts and not valid[g]]
    return ImageMatching(tuple(pairs), fps, misses, tuple(invalid))
