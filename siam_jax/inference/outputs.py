"""What the demo writes per frame: the prediction npz (schema v1), meshes, the run summary.

The npz follows ``siam_jax.common.prediction_file`` (docs/prediction_format.md describes every
key and unit; docs/demo.md the demo's outputs): smplx names, axis-angle, metres, the camera
frame of the original image whose ``intrinsics`` project ``joints_3d`` onto ``joints_2d``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siam_jax.common import prediction_file
from siam_jax.inference import media
from siam_jax.inference.predictor import FramePrediction

JOINT_SET = "smpl24"  # the 24 SMPL kinematic joints (siam_jax.body.joint_sets.SMPL_JOINT_NAMES)


def prediction_arrays(
    pred: FramePrediction, track_ids: np.ndarray, *, frame_index: int, image_name: str
) -> dict[str, np.ndarray]:
    """The schema-v1 arrays of one frame (``track_ids`` -1 where no tracker runs)."""
    n = len(pred.scores)
    # Trailing sizes from the arrays themselves: numpy cannot infer a -1 axis of an empty
    # array, and a frame where nobody passed the threshold has n = 0.
    num_betas = np.shape(pred.betas)[-1]
    num_joints = np.shape(pred.joints_3d)[-2]
    return {
        "global_orient": np.asarray(pred.global_orient, np.float32).reshape(n, 3),
        "body_pose": np.asarray(pred.body_pose, np.float32).reshape(n, 69),
        "betas": np.asarray(pred.betas, np.float32).reshape(n, num_betas),
        "transl": np.asarray(pred.transl, np.float32).reshape(n, 3),
        "track_id": np.asarray(track_ids, np.int64).reshape(n),
        "score": np.asarray(pred.scores, np.float32).reshape(n),
        "joints_3d": np.asarray(pred.joints_3d, np.float32).reshape(n, num_joints, 3),
        "joints_2d": np.asarray(pred.joints_2d, np.float32).reshape(n, num_joints, 2),
        "joint_set": np.asarray(JOINT_SET),
        "intrinsics": np.asarray(pred.intrinsics, np.float64),
        "image_size": np.asarray(pred.image_size, np.int64),
        "frame_index": np.asarray(frame_index, np.int64),
        "image_name": np.asarray(image_name),
    }


def write_frame(
    out_dir: Path,
    name: str,
    pred: FramePrediction,
    track_ids: np.ndarray,
    *,
    frame_index: int,
    faces: np.ndarray | None = None,
) -> None:
    """``params/<name>.npz`` and, with ``faces``, ``meshes/<name>_id<k>.obj`` per person."""
    arrays = prediction_arrays(pred, track_ids, frame_index=frame_index, image_name=name)
    prediction_file.write(out_dir / "params" / f"{name}.npz", **arrays)
    if faces is not None:
        for pid, verts in zip(track_ids, pred.vertices, strict=True):
            media.write_obj(out_dir / "meshes" / f"{name}_id{int(pid)}.obj", verts, faces)


def outputs_dir(output_dir: str | os.PathLike, input_path: Path, batch: bool) -> Path:
    """Where one input's outputs go: ``output_dir`` itself, or ``output_dir/<stem>`` in batch."""
    return Path(output_dir) / input_path.stem if batch else Path(output_dir)


def summary_path(out_dir: Path, input_path: Path) -> Path:
    """``<out_dir>/<input name>.summary.json``: written last, it marks the input as finished
    (a rerun skips it: resume)."""
    return Path(out_dir) / f"{input_path.name}.summary.json"
