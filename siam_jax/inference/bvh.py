"""``--export bvh``: one BVH file per track (24 SMPL joints), a pure-Python writer.

Skeleton: the SMPL kinematic tree (siam_jax.body.joint_sets: SMPL_JOINT_NAMES, SMPL_PARENTS),
each OFFSET the rest-pose joint minus its parent's for that person's shape (``J_regressor``
applied to the shaped template: the body model at zero pose), in metres. Leaves (feet, head,
hands) get an End Site at half their parent bone beyond them (BVH requires one; it carries no
motion). The rest frame is SMPL's canonical frame (y up, the body facing +z).

Motion, one line per video frame at the video's frame rate: the root's position then, for
every joint, ``Zrotation Xrotation Yrotation`` in degrees, R = Rz(z) Rx(x) Ry(y) (the order of
the channels, as BVH readers compose them, e.g. Blender's import_bvh). A joint's rotation is its
SMPL local rotation (SMPL's rest joint frames are axis-aligned with the canonical frame, so the
local rotation matrices are the BVH ones unchanged). The world is the camera frame turned
y-up: W = diag(1, -1, -1) X_cam (a rotation by pi about the camera's x axis; OpenCV's y-down,
z-forward camera becomes y up, z towards the viewer, as animation tools expect), so the root's
rotation is W R_global_orient and its position W (J_0(betas) + transl) (SMPL rotates about the
rest pelvis J_0, smplx lbs). Root OFFSET is zero, so the position channels are the pelvis.

Frames where a track is not seen hold its nearest seen pose (before the first sighting: the
first; after: the last), so every file has the video's frame count and aligns with it.
"""

from __future__ import annotations

import os

import numpy as np
from jaxtyping import Float
from scipy.spatial.transform import Rotation

from siam_jax.body.joint_sets import SMPL_JOINT_NAMES, SMPL_PARENTS
from siam_jax.body.rotations import axis_angle_to_matrix
from siam_jax.common.files import write_text

CAMERA_TO_WORLD = np.diag([1.0, -1.0, -1.0])  # camera (y down, z forward) -> y-up BVH world


def _children(parents: tuple[int, ...]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    for i, p in enumerate(parents):
        if p >= 0:
            out[p].append(i)
    return out


def _hierarchy(rest: np.ndarray, names, parents) -> list[str]:
    children = _children(parents)
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        p = parents[j]
        offset = np.zeros(3) if p < 0 else rest[j] - rest[p]
        head = "ROOT" if p < 0 else "JOINT"
        chans = "6 Xposition Yposition Zposition" if p < 0 else "3"
        lines.extend([f"{pad}{head} {names[j]}", f"{pad}{{",
                      f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}",
                      f"{pad}  CHANNELS {chans} Zrotation Xrotation Yrotation"])  # fmt: skip
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            end = 0.5 * offset
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}",
                          f"{pad}  }}"])  # fmt: skip
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


def _dfs_order(parents: tuple[int, ...]) -> list[int]:
    children, order, stack = _children(parents), [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def bvh_text(
    rest_joints: Float[np.ndarray, "24 3"],
    local_rotations: Float[np.ndarray, "t 24 3 3"],
    root_positions: Float[np.ndarray, "t 3"],
    fps: float,
) -> str:
    """The BVH of one person: rest skeleton, local rotations (root: in the world), root path."""
    rest = np.asarray(rest_joints, np.float64)
    rots = np.asarray(local_rotations, np.float64)
    t = rots.shape[0]
    if rest.shape != (24, 3) or rots.shape[1:] != (24, 3, 3) or root_positions.shape != (t, 3):
        raise ValueError(f"BVH needs rest [24 3], rotations [t 24 3 3], root [t 3]; got "
                         f"{rest.shape}, {rots.shape}, {root_positions.shape}")  # fmt: skip
    if t == 0 or fps <= 0:
        raise ValueError(f"BVH needs at least one frame and fps > 0, got {t} frames at {fps}")
    order = _dfs_order(SMPL_PARENTS)  # channel order = order of the joints in the hierarchy
    euler = Rotation.from_matrix(rots.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True)
    euler = euler.reshape(t, 24, 3)[:, order]
    lines = _hierarchy(rest, SMPL_JOINT_NAMES, SMPL_PARENTS)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.8f}"]
    for i in range(t):
        values = np.concatenate([root_positions[i], euler[i].reshape(-1)])
        lines.append(" ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines) + "\n"


def write_bvh(path: str | os.PathLike, *args, **kwargs) -> None:
    """``bvh_text(*args, **kwargs)`` written atomically to ``path``."""
    write_text(path, bvh_text(*args, **kwargs))


def smpl_motion(
    rest_joints: Float[np.ndarray, "24 3"],
    rotations: Float[np.ndarray, "t 24 3 3"],
    transl: Float[np.ndarray, "t 3"],
) -> tuple[np.ndarray, np.ndarray]:
    """(BVH local rotations, root positions) of SMPL parameters given in the camera frame."""
    rots = np.array(rotations, np.float64)
    rots[:, 0] = CAMERA_TO_WORLD @ rots[:, 0]
    root = (np.asarray(transl, np.float64) + rest_joints[0]) @ CAMERA_TO_WORLD.T
    return rots, root


class BvhRecorder:
    """Collects each track's per-frame SMPL parameters of one video; ``write`` makes the files.

    ``rest_joints(betas [nb]) -> [24 3]`` gives the rest skeleton of a shape (the body model at
    zero pose); a track's skeleton uses the mean of its betas over the frames it was seen in.
    """

    def __init__(self, rest_joints):
        self._rest_joints = rest_joints
        self._tracks: dict[int, dict[int, tuple]] = {}

    def add(self, frame_index: int, track_ids, global_orient, body_pose, betas, transl) -> None:
        n = len(track_ids)
        aa = np.concatenate(
            [np.reshape(global_orient, (n, 1, 3)), np.reshape(body_pose, (n, 23, 3))], axis=1
        )
        for i, tid in enumerate(np.asarray(track_ids).tolist()):
            self._tracks.setdefault(int(tid), {})[frame_index] = (aa[i], betas[i], transl[i])

    def write(self, out_dir: str | os.PathLike, stem: str, fps: float, num_frames: int) -> list:
        """One ``<stem>_track<k>.bvh`` per track in ``out_dir``; returns their paths."""
        paths = []
        for tid, frames in sorted(self._tracks.items()):
            seen = np.array(sorted(frames))
            # nearest seen frame for every video frame (hold the pose over gaps and the ends)
            idx = np.clip(np.searchsorted(seen, np.arange(num_frames)), 0, len(seen) - 1)
            prev = np.clip(idx - 1, 0, len(seen) - 1)
            pick = np.where(np.abs(seen[prev] - np.arange(num_frames)) <
                            np.abs(seen[idx] - np.arange(num_frames)), prev, idx)  # fmt: skip
            aa = np.stack([frames[int(seen[k])][0] for k in pick])
            transl = np.stack([frames[int(seen[k])][2] for k in pick])
            betas = np.mean([frames[int(f)][1] for f in seen], axis=0)
            rest = np.asarray(self._rest_joints(betas), np.float64)
            rots = axis_angle_to_matrix(aa.astype(np.float64))
            local, root = smpl_motion(rest, rots, transl)
            path = os.path.join(os.fspath(out_dir), f"{stem}_track{tid}.bvh")
            write_bvh(path, rest, local, root, fps)
            paths.append(path)
        return paths
