"""The predictions of one frame as the evaluators take them, whatever produced them.

``Prediction`` holds the valid people of one frame: 2D in the stored image's pixels, 3D in its
camera frame (metres). ``frame_prediction`` makes one from the network's outputs
(docs/architecture.md, model output vocabulary).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from siam_jax.evaluation.frames import Frame, to_stored_pixels


@dataclasses.dataclass
class Prediction:
    """The valid predictions of one frame (stored-image pixels, camera frame metres)."""

    joints_2d: np.ndarray  # [q 24 2]
    centres: np.ndarray  # [q 2]
    joints_3d: np.ndarray  # [q 24 3]
    vertices: np.ndarray  # [q v 3]
    global_orient: np.ndarray  # [q 1 3 3]
    body_pose: np.ndarray  # [q 23 3 3]
    betas: np.ndarray  # [q 10]
    transl: np.ndarray  # [q 3]


def frame_prediction(out: Mapping[str, Any], b: int, t: int, frame: Frame) -> Prediction:
    """Valid slots of row ``b`` frame ``t`` of the model outputs ``out`` (host arrays
    ``[b t k ...]``), 2D taken to the stored image's pixels."""
    q = np.flatnonzero(np.asarray(out["valid"][b, t], bool))
    sp = out["pred_smpl_params"]
    return Prediction(
        joints_2d=to_stored_pixels(np.asarray(out["pred_keypoints_2d"][b, t, q]), frame.to_stored),
        centres=to_stored_pixels(np.asarray(out["centers"][b, t, q]), frame.to_stored),
        joints_3d=np.asarray(out["pred_keypoints_3d"][b, t, q]),
        vertices=np.asarray(out["pred_vertices"][b, t, q]),
        global_orient=np.asarray(sp["global_orient"][b, t, q]),
        body_pose=np.asarray(sp["body_pose"][b, t, q]),
        betas=np.asarray(sp["betas"][b, t, q]),
        transl=np.asarray(out["pred_cam_t"][b, t, q]),
    )
