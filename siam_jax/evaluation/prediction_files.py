"""Predictions of any method from per-frame files (``siam_jax.common.prediction_file``, schema v1;
docs/prediction_format.md) as ``predictions.Prediction`` for the 3DPW and CMU-Panoptic evaluators.

A file maps to a dataset frame by its ``image_name`` key, equal to the record's ``image_name``
(3DPW: ``imageFiles/<sequence>/image_<t:05d>.jpg``; CMU-Panoptic: CRMH's ``filename``); a file
without that key maps by its file name: the record's ``image_name`` with ``/`` replaced by ``__``
and the extension replaced by ``.npz`` (``imageFiles__courtyard_basketball_00__image_00012.npz``).
A frame with no file has no predictions (all its GT people are missed, counted in the report).
"""

from __future__ import annotations

import glob
import os

import numpy as np

from siam_jax.body import rotations
from siam_jax.common import prediction_file
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.predictions import Prediction


def file_key(image_name: str) -> str:
    """The file name stem a frame's prediction file may have (module doc)."""
    return os.path.splitext(str(image_name).replace("\\", "/"))[0].replace("/", "__")


class PredictionFiles:
    """The ``*.npz`` prediction files of a folder (searched recursively), indexed by frame."""

    def __init__(self, folder: str):
        paths = sorted(glob.glob(os.path.join(folder, "**", "*.npz"), recursive=True))
        if not paths:
            raise FileNotFoundError(
                f"{folder}: no prediction files (*.npz, docs/prediction_format.md)"
            )
        self.folder = folder
        self.by_key: dict[str, str] = {}
        for path in paths:
            arrays = prediction_file.read(path)
            key = str(arrays["image_name"]) if "image_name" in arrays else None
            key = key if key else os.path.splitext(os.path.basename(path))[0]
            if key in self.by_key:
                raise ValueError(f"{path} and {self.by_key[key]} both predict frame {key!r}")
            self.by_key[key] = path
        self.num_used = 0
        self.num_frames_without_file = 0

    def path_for(self, frame: Frame) -> str | None:
        for key in (frame.image_name, file_key(frame.image_name)):
            if key in self.by_key:
                return self.by_key[key]
        return None

    def prediction(self, frame: Frame, body_model) -> Prediction:
        """The frame's prediction (empty when it has no file)."""
        path = self.path_for(frame)
        if path is None:
            self.num_frames_without_file += 1
            return empty_prediction(body_model.num_vertices)
        self.num_used += 1
        return from_arrays(prediction_file.read(path), frame, body_model, path)


def empty_prediction(num_vertices: int = 6890) -> Prediction:
    z = np.zeros
    return Prediction(
        joints_2d=z((0, 24, 2)), centres=z((0, 2)), joints_3d=z((0, 24, 3)),
        vertices=z((0, num_vertices, 3)), global_orient=z((0, 1, 3, 3)),
        body_pose=z((0, 23, 3, 3)), betas=z((0, 10)), transl=z((0, 3)),
    )  # fmt: skip


def from_arrays(arrays: dict, frame: Frame, body_model, source: str) -> Prediction:
    """A ``Prediction`` from one file's arrays; the image size must be the frame's (the 2D joints
    are in that image's pixels). Vertices come from the file or, without them, from its SMPL
    parameters through ``body_model``."""
    h, w = (int(x) for x in arrays["image_size"])
    if (w, h) != (frame.width, frame.height):
        raise ValueError(
            f"{source}: image_size (h, w) = {(h, w)}, but frame {frame.image_name} is "
            f"{(frame.height, frame.width)}: the 2D joints would be in other pixels"
        )
    if str(arrays["joint_set"]) != "smpl24":
        raise ValueError(
            f"{source}: joint_set {str(arrays['joint_set'])!r}; this scorer needs 'smpl24'"
        )
    betas = np.asarray(arrays["betas"], np.float32)
    if betas.shape[1] != 10:
        raise ValueError(f"{source}: betas has {betas.shape[1]} columns; 3DPW/Panoptic take 10")
    go = np.asarray(rotations.axis_angle_to_matrix(np.asarray(arrays["global_orient"], np.float32)))
    bp = np.asarray(arrays["body_pose"], np.float32).reshape(-1, 23, 3)
    bp = np.asarray(rotations.axis_angle_to_matrix(bp))
    transl = np.asarray(arrays["transl"], np.float32)
    if "vertices" in arrays:
        vertices = np.asarray(arrays["vertices"], np.float32)
    elif len(betas):
        out = body_model(betas=betas, body_pose=bp, global_orient=go[:, None], transl=transl)
        vertices = np.asarray(out.vertices)
    else:
        vertices = np.zeros((0, body_model.num_vertices, 3), np.float32)
    j2 = np.asarray(arrays["joints_2d"], np.float32)
    return Prediction(
        joints_2d=j2, centres=j2[:, 0], joints_3d=np.asarray(arrays["joints_3d"], np.float32),
        vertices=vertices, global_orient=go[:, None], body_pose=bp, betas=betas, transl=transl,
    )  # fmt: skip
