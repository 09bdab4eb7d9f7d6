"""3DPW / 3DPW-OCC: AGORA's greedy 2D matcher on the 24 SMPL joints (``pw3d.match_persons``),
then ``Pw3dAccumulator`` (romp_vibe or spin) on the evaluable (``campose_valid``) people; GT
meshes from the body model of the protocol's gender; missed people counted beside every metric;
the acceleration error over each GT person's track (``pw3d.accel_tracks``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from siam_jax.data import schema
from siam_jax.evaluation import pw3d
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.predictions import Prediction


class Pw3dEval:
    def __init__(self, body_model, gt: GtMeshes, protocol: str, video: bool = False):
        self.gt = gt
        self.protocol = protocol
        self.video = video
        self.acc = pw3d.Pw3dAccumulator(body_model.h36m_regressor, protocol)
        # (sequence, GT person index) -> [(frame_index, pred14, gt14)] for the acceleration error
        self.tracks: dict[tuple[str, int], list] = {}

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
        gt_v = self._gt_vertices(frame, gi, pred.vertices[pi])
        self.acc.add(pred.vertices[pi], gt_v)
        self._track(frame, gi, pred.vertices[pi], gt_v)

    def _track(self, frame: Frame, gi: np.ndarray, pred_v: np.ndarray, gt_v: np.ndarray) -> None:
        reg = self.acc.regressor
        p14, _ = pw3d.lsp14_root_relative(pred_v, reg, self.protocol)
        g14, _ = pw3d.lsp14_root_relative(gt_v, reg, self.protocol)
        t = int(frame.record["frame_index"])
        for k, g in enumerate(gi):
            item = (t, np.asarray(p14[k]), np.asarray(g14[k]))
            self.tracks.setdefault((frame.sequence_id, int(g)), []).append(item)

    def result(self) -> dict[str, Any]:
        out = self.acc.result()
        accel = pw3d.accel_tracks(self.tracks.values())
        # VIBE compute_error_accel x 1000: mm/frame^2 over every scored second difference.
        out["ACCEL"] = float(pw3d.MM * accel.mean()) if accel.size else float("nan")
        out["num_accel_frames"] = int(accel.size)
        out["video"] = self.video
        return out
