"""Starting point of the iterative regressor: mean SMPL pose (6D), betas and camera.

Two sources:

* ``rest_mean_params()``: built in, licence free. The SMPL zero pose is a T-pose in SMPL's own
  frame (y up); people in images stand in the OpenCV camera frame (y down, z forward), so the
  root is turned by pi about x (SPIN's ``smpl_mean_params.npz`` holds nearly the same root,
  about (pi, 0, 0) in axis-angle). Arms are lowered about 55 degrees from the T-pose and elbows
  and knees slightly bent, a natural rest posture close to a standing person.
* ``load_mean_params(path)``: SPIN-style ``smpl_mean_params.npz`` with keys ``pose`` (144, 24 joints
  in 6D), ``shape`` (10) and ``cam`` (3) (SPIN: models/hmr.py reads exactly these keys).
"""

from __future__ import annotations

import os

import numpy as np

from siam_jax.body import rotations

NUM_JOINTS = 24  # SMPL kinematic joints (global orient + 23 body joints)
NUM_BETAS = 10
POSE_DIM = NUM_JOINTS * 6  # 6D per joint, SPIN/ROMP layout
CAM_DIM = 3  # (s, tx, ty), HMR weak-perspective style
PARAM_DIM = POSE_DIM + NUM_BETAS + CAM_DIM  # 157

# smplx joint order (smplx/joint_names.py): 1 l_hip, 2 r_hip, 4 l_knee, 5 r_knee,
# 16 l_shoulder, 17 r_shoulder, 18 l_elbow, 19 r_elbow.
_REST_AXIS_ANGLE = {
    0: (np.pi, 0.0, 0.0),  # upright in the OpenCV camera frame, facing the camera
    4: (0.15, 0.0, 0.0),  # knees bent slightly (flexion about +x in SMPL's frame)
    5: (0.15, 0.0, 0.0),
    16: (0.0, 0.0, -0.95),  # left arm (+x side) down towards -y: rotation about z
    17: (0.0, 0.0, 0.95),
    18: (0.0, -0.3, 0.0),  # elbows bent slightly forward
    19: (0.0, 0.3, 0.0),
}
# SPIN's mean camera scale is about 0.9 (smpl_mean_params.npz 'cam'); a body of ~1.7 m then
# spans most of the image height: a sensible start before any feedback.
_REST_CAM = (0.9, 0.0, 0.0)


def rest_mean_params() -> dict[str, np.ndarray]:
    """Built-in rest posture: ``pose`` [144] (6D), ``shape`` [10] zeros, ``cam`` [3]."""
    aa = np.array([_REST_AXIS_ANGLE.get(j, (0.0, 0.0, 0.0)) for j in range(NUM_JOINTS)])
    rot = rotations.axis_angle_to_matrix(aa)  # numpy in, numpy out
    return {
        "pose": rotations.matrix_to_rot6d(rot).reshape(POSE_DIM).astype(np.float32),
        "shape": np.zeros(NUM_BETAS, np.float32),
        "cam": np.asarray(_REST_CAM, np.float32),
    }


def load_mean_params(path: str) -> dict[str, np.ndarray]:
    """Reads a SPIN-style ``smpl_mean_params.npz`` (keys ``pose`` 144, ``shape`` 10, ``cam`` 3)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"mean params file not found: {path}")
    sizes = {"pose": POSE_DIM, "shape": NUM_BETAS, "cam": CAM_DIM}
    out = {}
    with np.load(path) as f:
        for key, size in sizes.items():
            if key not in f:
                raise KeyError(f"{path}: missing key {key!r} (has {sorted(f.files)})")
            value = np.asarray(f[key], np.float32).reshape(-1)
            if value.shape != (size,):
                raise ValueError(f"{path}: key {key!r} has {value.size} values, expected {size}")
            out[key] = value
    return out


def get_mean_params(path: str = "") -> dict[str, np.ndarray]:
    """The file's mean parameters when ``path`` is set, else the built-in rest posture."""
    return load_mean_params(path) if path else rest_mean_params()
