"""CMU-Panoptic multi-person MPJPE, the protocol of CRMH (Jiang et al. 2020), reused by ROMP/BEV.

CRMH mmdetection/mmdet/core/utils/eval_utils.py: PanopticEvalHandler (PROTOCOLS.md section 3.2):

* GT: the SPIN 24-joint superset with visibility, ``kpts3d [P 24 4]``; the H36M-17 joints are
  ``kpts3d[:, J24_TO_H36M, :3] - kpts3d[:, 14, :3]`` (root = J24 index 14, Pelvis (MPII) /
  Panoptic BodyCenter), visibility ``kpts3d[:, J24_TO_H36M, 3]``.
* Predictions: H36M-17 joints regressed from each predicted mesh, minus their joint 0.
* ``glb_vis``: the joints visible in **all** GT people of the image; each GT person is paired with
  the prediction nearest over those joints (argmin, **not** one-to-one: two GT people may share a
  prediction, CRMH counts that as a "mismatch").
* Error: ``||pred - gt|| * vis`` per joint, invisible joints zeroed **but kept** in the mean over
  all 17; the image's mean times 1000 enters a person-weighted running mean per activity
  (``AverageMeter.update(mpjpe, n=num_gt)``); the table reports each activity and the mean of the 4.

* An image without any prediction: every GT person of it costs the miss penalty, 150 mm
  (``MISS_PENALTY_MM``; the ``missing_punish = 150`` of the multi-person Panoptic evaluation that
  ROMP/BEV run, PROTOCOLS.md 3.4), entered with weight 1 per person, so such images are charged,
  never skipped.

CRMH's ``vectorize_distance`` computes sqrt(|a|^2 + |b|^2 - 2 a.b); we take the norm of the
difference directly: the same distance without the cancellation error, hence the same argmin.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# CRMH smpl_utils.py J24_TO_H36M (SPIN 24-joint superset -> H36M-17) and its root, J24 14.
from siam_jax.body.joint_sets import J24_PELVIS, J24_TO_H36M

# The four activities and the activity of a sequence id belong to the dataset.
from siam_jax.data.builders.cmu_panoptic import ACTIVITIES, panoptic_activity

MM = 1000.0
# The per-person miss penalty (mm) of an image without predictions (module doc).
MISS_PENALTY_MM = 150.0


def gt_h36m_from_j24(kpts3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative H36M-17 GT joints [P 17 3] and visibility [P 17] from ``kpts3d [P 24 4]``."""
    k = np.asarray(kpts3d, np.float64)
    if k.ndim != 3 or k.shape[1:] != (24, 4):
        raise ValueError(f"kpts3d must be [P, 24, 4] (x, y, z, visibility), got {k.shape}")
    gt = k[:, J24_TO_H36M, :3] - k[:, J24_PELVIS : J24_PELVIS + 1, :3]
    return gt, k[:, J24_TO_H36M, 3]


def image_mpjpe(
    gt17: np.ndarray, vis: np.ndarray, pred17: np.ndarray
) -> tuple[float, np.ndarray, bool]:
    """CRMH's MPJPE (mm) of one image, the GT -> prediction pairing, and the mismatch flag.

    Args:
      gt17: [P 17 3] root-relative GT H36M joints (metres; see ``gt_h36m_from_j24``).
      vis: [P 17] 0/1 visibility.
      pred17: [Q 17 3] predicted H36M joints (metres); root-centred here on their joint 0.
    """
    gt = np.asarray(gt17, np.float64)
    v = np.asarray(vis, np.float64)
    pred = np.asarray(pred17, np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (17, 3) or v.shape != gt.shape[:2]:
        raise ValueError(f"gt17 must be [P 17 3] with vis [P 17], got {gt.shape} and {v.shape}")
    if pred.ndim != 3 or pred.shape[1:] != (17, 3) or pred.shape[0] == 0:
        raise ValueError(f"pred17 must be [Q>=1 17 3], got {pred.shape}")
    pred = pred - pred[:, :1]
    n_gt = gt.shape[0]
    # Joints visible in every GT person ("- 0.1" guards float sums, as CRMH does).
    glb_vis = (v.sum(0) >= n_gt - 0.1).astype(np.float64)[None, :, None]
    a = (glb_vis * gt).reshape(n_gt, -1)
    b = (glb_vis * pred).reshape(pred.shape[0], -1)
    dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    paired = dist.argmin(1)
    err = np.linalg.norm(pred[paired] - gt, axis=-1) * v  # invisible joints 0, still averaged
    mismatch = len(set(paired.tolist())) < len(paired)
    return float(err.mean() * MM), paired, mismatch


class PanopticAccumulator:
    """Person-weighted MPJPE per activity (CRMH's AverageMeter) and the mean of the activities."""

    def __init__(self):
        self._sum: dict[str, float] = {a: 0.0 for a in ACTIVITIES}
        self._count: dict[str, int] = {a: 0 for a in ACTIVITIES}
        self.num_mismatch = 0
        self.num_images_without_prediction = 0
        self.num_missed_persons = 0

    def add_image(
        self,
        name: str,
        pred17: np.ndarray,
        kpts3d: np.ndarray | None = None,
        gt17: np.ndarray | None = None,
        vis: np.ndarray | None = None,
    ) -> float | None:
        """Score one image given either ``kpts3d [P 24 4]`` or root-relative ``gt17`` + ``vis``.

        An image without any prediction charges each of its GT people ``MISS_PENALTY_MM`` (counted
        in ``num_images_without_prediction`` and ``num_missed_persons``). Returns the image's mm
        error.
        """
        activity = panoptic_activity(name)
        if kpts3d is not None:
            gt17, vis = gt_h36m_from_j24(kpts3d)
        elif gt17 is None or vis is None:
            raise ValueError(f"{name}: give kpts3d or both gt17 and vis")
        if len(gt17) == 0:
            return None
        pred17 = np.asarray(pred17)
        if pred17.shape[0] == 0:
            self.num_images_without_prediction += 1
            self.num_missed_persons += len(gt17)
            self._sum[activity] += MISS_PENALTY_MM * len(gt17)
            self._count[activity] += len(gt17)
            return MISS_PENALTY_MM
        err, _, mismatch = image_mpjpe(gt17, vis, pred17)
        self.num_mismatch += int(mismatch)
        self._sum[activity] += err * len(gt17)
        self._count[activity] += len(gt17)
        return err

    def result(self) -> dict[str, float | int | None]:
        """Per-activity MPJPE (mm; None where empty), ``mean`` over the evaluated activities."""
        out: dict[str, float | int | None] = {}
        vals = []
        for a in ACTIVITIES:
            if self._count[a]:
                out[a] = self._sum[a] / self._count[a]
                vals.append(out[a])
            else:
                out[a] = None
        out["mean"] = float(np.mean(vals)) if vals else None
        out["num_activities"] = len(vals)
        out["num_persons"] = int(sum(self._count.values()))
        out["num_mismatch"] = self.num_mismatch
        out["num_images_without_prediction"] = self.num_images_without_prediction
        out["num_missed_persons"] = self.num_missed_persons
        out["miss_penalty_mm"] = MISS_PENALTY_MM
        return out

    def counts(self) -> Mapping[str, int]:
        return dict(self._count)
