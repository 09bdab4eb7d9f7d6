"""Joint sets, kinematic tree and horizontal-flip permutations.

Sources:
- SMPL-24 names/order: smplx/joint_names.py (SMPL_JOINT_NAMES[:24]); parents: the standard SMPL
  kintree_table row 0 (smplx/body_models.py sets parents[0] = -1).
- The 21 extra joints of smplx's 45-set and their vertex ids: smplx/vertex_ids.py ('smplh', shared
  by SMPL) in smplx/vertex_joint_selector.py order.
- H36M-17 regressor rows, LSP-14 and H36M_TO_J14: SPIN constants.py (H36M_TO_J17, J24 names).
- Flip permutations: SPIN constants.py (SMPL_JOINTS_FLIP_PERM, SMPL_POSE_FLIP_PERM, J24_FLIP_PERM)
  and utils/imutils.py (flip_pose, flip_kp).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
NUM_SMPL_JOINTS = 24
NUM_BODY_JOINTS = 23  # without the root (global_orient)

SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

# smplx/vertex_ids.py 'smplh' + vertex_joint_selector.py order (face keypoints, feet, fingertips).
EXTRA_JOINT_NAMES: tuple[str, ...] = (
    "nose", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
    "right_heel", "left_thumb", "left_index", "left_middle", "left_ring", "left_pinky",
    "right_thumb", "right_index", "right_middle", "right_ring", "right_pinky",
)  # fmt: skip
EXTRA_JOINT_VERTEX_IDS: tuple[int, ...] = (
    332, 6260, 2800, 4071, 583,
    3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133,
)  # fmt: skip
SMPL45_JOINT_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES + EXTRA_JOINT_NAMES

# Rows of J_regressor_h36m.npy named as SPIN reads them: SPIN constants.py maps
# H36M_TO_J17 = [6,5,4,1,2,3,16,15,14,11,12,13,8,10,0,7,9] onto the LSP order (R ankle, R knee,
# R hip, L hip, ...), so rows 1-3 are the left leg and 4-6 the right leg in that reading.
H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "spine", "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
H36M_TO_J17: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)
H36M_TO_J14: tuple[int, ...] = H36M_TO_J17[:14]
# CRMH smpl_utils.py J24_TO_H36M: the SPIN/CRMH 24-joint superset (LSP-14 first, then neck
# (LSP), head top, pelvis (MPII), thorax, spine, jaw, head (H36M), ...) -> H36M-17; index 14 of
# the 24 is the pelvis, CRMH's root for CMU-Panoptic (PROTOCOLS.md section 3.2).
J24_TO_H36M: tuple[int, ...] = (14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6)
J24_PELVIS = 14
# LSP-14 (SPIN constants.py J24 names [:14]; index 13 is the head top).
LSP_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "head_top",
)  # fmt: skip


def _perm_from_names(names: tuple[str, ...]) -> tuple[int, ...]:
    """Flip permutation that swaps every left_* name with its right_* counterpart."""
    index = {n: i for i, n in enumerate(names)}

    def mirror(n: str) -> str:
        if n.startswith("left_"):
            return "right_" + n[5:]
        if n.startswith("right_"):
            return "left_" + n[6:]
        return n

    return tuple(index[mirror(n)] for n in names)


# SPIN constants.py SMPL_JOINTS_FLIP_PERM.
SMPL_JOINTS_FLIP_PERM: tuple[int, ...] = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)  # fmt: skip
SMPL_POSE_FLIP_PERM: tuple[int, ...] = tuple(
    3 * i + k for i in SMPL_JOINTS_FLIP_PERM for k in range(3)
)
SMPL45_FLIP_PERM: tuple[int, ...] = _perm_from_names(SMPL45_JOINT_NAMES)
H36M_FLIP_PERM: tuple[int, ...] = _perm_from_names(H36M_JOINT_NAMES)
LSP_FLIP_PERM: tuple[int, ...] = _perm_from_names(LSP_JOINT_NAMES)  # SPIN J24_FLIP_PERM[:14]

assert SMPL_JOINTS_FLIP_PERM == _perm_from_names(SMPL_JOINT_NAMES)

# Mirror through the x = 0 plane (the image's horizontal flip in the OpenCV camera frame).
_MIRROR = np.array([-1.0, 1.0, 1.0])


def flip_pose_axis_angle(pose: Float[Array, "... 24 3"]) -> Float[Array, "... 24 3"]:
    """Mirror an SMPL pose: swap left/right joints and negate the y, z axis-angle components.

    SPIN utils/imutils.py flip_pose on the flat 72-vector; here on [..., 24, 3].
    """
    pose = jnp.asarray(pose)
    if pose.shape[-2:] != (24, 3):
        raise ValueError(f"flip_pose_axis_angle expects [..., 24, 3], got {pose.shape}")
    pose = pose[..., SMPL_JOINTS_FLIP_PERM, :]
    return pose * jnp.asarray([1.0, -1.0, -1.0], pose.dtype)


flip_pose = flip_pose_axis_angle


def flip_rotmats(rot: Float[Array, "... 24 3 3"]) -> Float[Array, "... 24 3 3"]:
    """Mirror SMPL rotation matrices: permute joints, then R' = M R M with M = diag(-1, 1, 1).

    Equivalent to flip_pose_axis_angle (negating y, z of the axis and keeping the angle).
    """
    rot = jnp.asarray(rot)
    if rot.shape[-3:] != (24, 3, 3):
        raise ValueError(f"flip_rotmats expects [..., 24, 3, 3], got {rot.shape}")
    rot = rot[..., SMPL_JOINTS_FLIP_PERM, :, :]
    s = jnp.asarray(_MIRROR, rot.dtype)
    return rot * s[:, None] * s[None, :]


def flip_keypoints_3d(
    kp: Float[Array, "... j 3"], perm: tuple[int, ...] = SMPL_JOINTS_FLIP_PERM
) -> Float[Array, "... j 3"]:
    """Mirror 3D keypoints through x = 0 and swap left/right with `perm`."""
    kp = jnp.asarray(kp)
    if kp.shape[-2] != len(perm):
        raise ValueError(f"keypoints have {kp.shape[-2]} joints, flip perm has {len(perm)}")
    kp = kp[..., perm, :]
    return kp.at[..., 0].multiply(-1.0)


def flip_keypoints_2d(
    kp: Float[Array, "... j 2"], width: float, perm: tuple[int, ...] = SMPL_JOINTS_FLIP_PERM
) -> Float[Array, "... j 2"]:
    """Mirror pixel keypoints in an image of `width` pixels (pixel centres at 0..width-1).

    u' = width - 1 - u (OpenCV pixel-centre convention of docs/architecture.md); SPIN's flip_kp
    negates x in normalised [-1, 1] coordinates, which is the same map.
    """
    kp = jnp.asarray(kp)
    if kp.shape[-2] != len(perm):
        raise ValueError(f"keypoints have {kp.shape[-2]} joints, flip perm has {len(perm)}")
    kp = kp[..., perm, :]
    return kp.at[..., 0].set(width - 1.0 - kp[..., 0])


__all__ = [
    "EXTRA_JOINT_NAMES",
    "EXTRA_JOINT_VERTEX_IDS",
    "H36M_FLIP_PERM",
    "H36M_JOINT_NAMES",
    "H36M_TO_J14",
    "H36M_TO_J17",
    "J24_PELVIS",
    "J24_TO_H36M",
    "LSP_FLIP_PERM",
    "LSP_JOINT_NAMES",
    "NUM_BODY_JOINTS",
    "NUM_SMPL_JOINTS",
    "SMPL45_FLIP_PERM",
    "SMPL45_JOINT_NAMES",
    "SMPL_JOINTS_FLIP_PERM",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "SMPL_POSE_FLIP_PERM",
    "flip_keypoints_2d",
    "flip_keypoints_3d",
    "flip_pose",
    "flip_pose_axis_angle",
    "flip_rotmats",
]  # fmt: skip
