"""siam_synthetic (our own protocol): one-to-one greedy nearest-centre matching, then
pelvis-aligned MPJPE, PA-MPJPE and PVE over the 24 SMPL joints / all vertices."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from siam_jax.evaluation import metrics as metrics_lib
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.matching import nearest_centre_pairs
from siam_jax.evaluation.predictions import Prediction

MM = 1000.0  # metres -> the millimetres of reports


def synthetic_errors(
    pred_joints: Float[np.ndarray, "n 24 3"],
    pred_vertices: Float[np.ndarray, "n v 3"],
    gt_joints: Float[np.ndarray, "n 24 3"],
    gt_mesh: tuple[np.ndarray, np.ndarray],
) -> dict[str, Array]:
    """Pelvis-aligned MPJPE, PA-MPJPE (24 SMPL joints) and PVE (all vertices), metres."""
    gt_v, gt_body_joints = gt_mesh
    pj, gj = jnp.asarray(pred_joints), jnp.asarray(gt_joints)
    pja, gja = metrics_lib.align_by_pelvis(pj), metrics_lib.align_by_pelvis(gj)
    pva = metrics_lib.align_by_pelvis(jnp.asarray(pred_vertices), reference=pj)
    gva = metrics_lib.align_by_pelvis(jnp.asarray(gt_v), reference=jnp.asarray(gt_body_joints))
    return {
        "MPJPE": metrics_lib.mpjpe(pja, gja),
        "PA-MPJPE": metrics_lib.pa_mpjpe(pja, gja),
        "PVE": metrics_lib.pve(pva, gva),
    }


class SyntheticEval:
    protocol = "pelvis_aligned_nearest_centre"

    def __init__(self, gt: GtMeshes):
        self.gt = gt
        self.errors: dict[str, list[float]] = {"MPJPE": [], "PA-MPJPE": [], "PVE": []}
        self.num_unmatched = 0

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["has_3d"] & p["has_smpl"])
        if len(idx) == 0:
            return
        # GT centre = the projected pelvis, as the pipeline's centre targets (docs/data.md).
        pairs = nearest_centre_pairs(pred.centres, p["joints_2d"][idx, 0])
        self.num_unmatched += len(idx) - len(pairs)
        if not pairs:
            return
        pi = np.array([a for a, _ in pairs])
        gi = idx[np.array([b for _, b in pairs])]
        errs = synthetic_errors(
            pred.joints_3d[pi], pred.vertices[pi], p["joints_3d"][gi], self.gt(p, gi)
        )
        for k, v in errs.items():
            self.errors[k] += list(np.asarray(v, np.float64) * MM)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: float(np.mean(v)) if v else float("nan") for k, v in self.errors.items()
        }
        out["num_persons"] = len(self.errors["MPJPE"])
        out["num_unmatched"] = self.num_unmatched
        return out
