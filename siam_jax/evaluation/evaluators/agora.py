"""AGORA: the official evaluator (``evaluation.agora.evaluate_agora``) on a GT DataFrame built
from the records (``gt_joints_2d`` scaled to 3840x2160, GT meshes from the neutral body model)
and per-person predictions in the official format (``agora_export.person_record``), optionally
exported for the test server."""

from __future__ import annotations

from typing import Any

import numpy as np

from siam_jax.evaluation import agora as agora_lib
from siam_jax.evaluation import agora_export
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.predictions import Prediction


def _persons(frame: Frame, pred: Prediction) -> list[dict[str, Any]]:
    """``agora_export.person_record`` inputs of each predicted person."""
    return [
        {
            "joints_2d": pred.joints_2d[q],
            "image_size": (frame.width, frame.height),
            "vertices": pred.vertices[q],
            "joints_3d": pred.joints_3d[q],
            "params": {
                "global_orient": pred.global_orient[q],
                "body_pose": pred.body_pose[q],
                "betas": pred.betas[q],
                "transl": pred.transl[q],
            },
        }
        for q in range(len(pred.joints_2d))
    ]


class AgoraEval:
    protocol = "agora_official"

    def __init__(self, gt: GtMeshes, export_dir: str | None, body_verts_index=None):
        self.gt = gt
        self.export_dir = export_dir
        self.body_verts_index = body_verts_index
        self.rows: list[dict] = []
        self.predictions: dict[str, list[dict]] = {}
        self.num_exported = 0

    def _gt_row(self, frame: Frame) -> dict[str, Any]:
        """The frame as a row of the official GT DataFrame (agora.GT_COLUMNS + kid)."""
        p = frame.persons
        scale = agora_export.AGORA_WIDTH / frame.width  # official GT 2D is in 3840x2160 pixels
        n = len(p["valid"])
        verts = self.gt(p, np.arange(n))[0] if n else np.zeros((0, 6890, 3))
        return {
            "imgPath": frame.image_name,
            "isValid": [bool(v) for v in p["valid"]],
            "occlusion": [float(o) for o in p["occlusion"]],
            "kid": [bool(k) for k in p["kid"]],
            "gt_joints_2d": [np.asarray(j, np.float64) * scale for j in p["joints_2d"]],
            "gt_joints_3d": [np.asarray(j, np.float64) for j in p["joints_3d"]],
            "gt_verts": [np.asarray(v, np.float64) for v in verts],
        }

    def add(self, frame: Frame, pred: Prediction) -> None:
        self.rows.append(self._gt_row(frame))
        persons = _persons(frame, pred)
        if not persons:
            return
        key = agora_lib.image_key(frame.image_name)
        self.predictions[key] = [agora_export.person_record(x) for x in persons]
        if self.export_dir:
            agora_export.write_agora_predictions(self.export_dir, frame.image_name, persons)
            self.num_exported += len(persons)

    def result(self) -> dict[str, Any]:
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=[*agora_lib.GT_COLUMNS, "kid"])
        out = agora_lib.evaluate_agora([df], self.predictions, self.body_verts_index)
        out["body_verts"] = "all" if self.body_verts_index is None else len(self.body_verts_index)
        out["num_persons"] = out["num_gt"]
        if self.export_dir:
            out["exported_predictions"] = self.num_exported
        return out
