"""CMU-Panoptic: CRMH's argmin pairing and per-activity MPJPE (``panoptic.PanopticAccumulator``)
on the H36M-17 joints regressed from the predicted meshes."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from siam_jax.evaluation import panoptic
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.predictions import Prediction


class PanopticEval:
    protocol = "crmh"

    def __init__(self, body_model):
        self.body = body_model
        self.acc = panoptic.PanopticAccumulator()

    def add(self, frame: Frame, pred: Prediction) -> None:
        p = frame.persons
        idx = np.flatnonzero(p["has_h36m"])
        if len(idx) == 0:
            return
        j = p["joints_h36m_3d"][idx]
        # Stored joints are kpts3d[:, J24_TO_H36M]; H36M joint 0 is J24 14, CRMH's root.
        gt17 = j - j[:, :1]
        pred17 = np.asarray(self.body.regress_h36m(jnp.asarray(pred.vertices)))
        self.acc.add_image(frame.sequence_id, pred17, gt17=gt17, vis=p["h36m_visibility"][idx])

    def result(self) -> dict[str, Any]:
        return self.acc.result()
