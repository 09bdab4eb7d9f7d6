"""3DPW / 3DPW-OCC: AGORA's greedy 2D matcher on the 24 SMPL joints (``pw3d.match_persons``),
then ``Pw3dAccumulator`` (romp_vibe or spin) on the evaluable (``campose_valid``) people; GT
meshes from the body model of the protocol's gender."""

from __future__ import annotations

from typing import Any

import numpy as np

from siam_jax.data import schema
from siam_jax.evaluation import pw3d
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.predictions import Prediction


class Pw3dEval:
    def __init__(self, body_model, gt: GtMeshes, protocol: str):
        self.gt = gt
        self.protocol = protocol
        self.acc = pw3d.Pw3dAccumulator(body_model.h36m_regressor, protocol)

    def _gt_vertices(self, frame: Frame, gi: np.ndarray, like: np.ndarray) -> np.ndarray:
        """GT vertices of persons ``gi``, each with its protocol's body model."""
        p = frame.persons
        gender_codes = p["gender"][gi]
        gt_v = np.zeros_like(like)
        for code in np.unique(gender_codes):
            sel = gender_codes == code
            gender = "neutral"
            if self.protocol == "spin":  # the actor's own model (SPIN eval.py)
                gname = schema.GENDERS[int(code)]
                if gname == "neutral":
                    raise ValueError(f"{frame.image_name}: the spin protocol needs each gender")
                gender = pw3d.gt_body_gender("spin", gname)
            gt_v[sel], _ = self.gt(p, gi[sel], gender)
        return gt_v

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["valid"] & p["has_smpl"])
        if len(idx) == 0:
            return
        pairs = pw3d.match_persons(list(pred.joints_2d), list(p["joints_2d"][idx]))
        self.acc.add_unmatched(len(idx) - len(pairs))
        if not pairs:
            return
        pi = np.array([a for a, _ in pairs])
        gi = idx[np.array([b for _, b in pairs])]
        self.acc.add(pred.vertices[pi], self._gt_vertices(frame, gi, pred.vertices[pi]))

    def result(self) -> dict[str, Any]:
        return self.acc.result()
