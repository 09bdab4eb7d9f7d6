"""Per-joint pose limit prior for procedural people (docs/data.md, "siam_synthetic").

Axis-angle components in each SMPL joint's local frame (SMPL rest pose: x to the subject's left,
y up, z forward; a T-pose). Each body joint's three components are drawn independently and
uniformly from the [lo, hi] range of this table (degrees); ranges follow coarse human range of
motion (knee flexion only backwards, elbows only forwards, arms mostly lowered from the T-pose).
"""

from __future__ import annotations

import numpy as np

# SMPL joint names (smplx/joint_names.py, first 24) and ranges per axis (x, y, z) in degrees.
POSE_LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-70, 20), (-20, 20), (-5, 25)),  # x < 0: thigh forward
    "right_hip": ((-70, 20), (-20, 20), (-25, 5)),
    "spine1": ((-10, 25), (-15, 15), (-10, 10)),
    "left_knee": ((0, 100), (-5, 5), (-3, 3)),  # flexion only
    "right_knee": ((0, 100), (-5, 5), (-3, 3)),
    "spine2": ((-5, 15), (-10, 10), (-8, 8)),
    "left_ankle": ((-20, 25), (-10, 10), (-10, 10)),
    "right_ankle": ((-20, 25), (-10, 10), (-10, 10)),
    "spine3": ((-5, 10), (-10, 10), (-5, 5)),
    "left_foot": ((-5, 5), (-5, 5), (-5, 5)),
    "right_foot": ((-5, 5), (-5, 5), (-5, 5)),
    "neck": ((-20, 30), (-30, 30), (-15, 15)),
    "left_collar": ((-5, 5), (-10, 5), (-10, 10)),
    "right_collar": ((-5, 5), (-5, 10), (-10, 10)),
    "head": ((-20, 25), (-35, 35), (-15, 15)),
    "left_shoulder": ((-30, 30), (-60, 30), (-80, 20)),  # z < 0 lowers the left arm
    "right_shoulder": ((-30, 30), (-30, 60), (-20, 80)),  # z > 0 lowers the right arm
    "left_elbow": ((-5, 5), (-120, 0), (-5, 5)),  # y < 0 bends the left forearm forwards
    "right_elbow": ((-5, 5), (0, 120), (-5, 5)),
    "left_wrist": ((-20, 20), (-20, 20), (-30, 30)),
    "right_wrist": ((-20, 20), (-20, 20), (-30, 30)),
    "left_hand": ((-5, 5), (-5, 5), (-10, 10)),
    "right_hand": ((-5, 5), (-5, 5), (-10, 10)),
}
_LIMITS = np.deg2rad(np.asarray(list(POSE_LIMITS_DEG.values()), np.float64))  # [23 3 2]


def sample_body_pose(rng: np.random.Generator) -> np.ndarray:
    """One body pose [23 3] (axis-angle, joints 1..23) drawn from the limit table."""
    lo, hi = _LIMITS[..., 0], _LIMITS[..., 1]
    return (lo + (hi - lo) * rng.random((23, 3))).astype(np.float32)


def sample_betas(rng: np.random.Generator, num: int = 10) -> np.ndarray:
    """Shape coefficients ~ N(0, 1) clipped to [-2.5, 2.5]."""
    return np.clip(rng.standard_normal(num), -2.5, 2.5).astype(np.float32)
