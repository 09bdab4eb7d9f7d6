"""``--smooth``: a One-Euro filter per track on pose, shape and translation (numpy, any backend).

Pose is filtered as unit quaternions (w, x, y, z), one per SMPL joint (global orientation and
the 23 body joints): axis-angle jumps at pi and is not a vector space, while q and -q are the same
rotation, so each new quaternion is first flipped onto the hemisphere of the previous filtered
one (sign continuity), filtered component-wise, then renormalised. For the small frame-to-frame
steps of a video this is a close approximation of filtering on the rotation manifold (normalised
linear quaternion blending, as in 4D-Humans' and WHAM's demos' smoothing). Betas and the camera
translation are filtered as vectors. A track unseen in the previous frame starts a fresh filter.

After filtering, the body model is run again on the smoothed parameters so vertices, 3D joints
and their projection through the frame's intrinsics stay consistent with the parameters.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from siam_jax.body.model import BodyModel
from siam_jax.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_quaternion,
    quaternion_to_axis_angle,
)
from siam_jax.inference.one_euro import OneEuroFilter
from siam_jax.inference.predictor import FramePrediction
from siam_jax.models.camera import perspective_projection


@dataclasses.dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro parameters (Casiez et al. 2012); defaults tuned by eye on 30 FPS video."""

    min_cutoff: float = 1.0  # Hz
    beta: float = 0.5
    d_cutoff: float = 1.0  # Hz


def continuous_quaternions(q: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """``q`` [..., 4] with each quaternion's sign chosen to have q . reference >= 0."""
    if reference is None:
        return q
    return np.where(np.sum(q * reference, axis=-1, keepdims=True) < 0, -q, q)


class _TrackFilter:
    def __init__(self, rate: float, cfg: SmoothingConfig):
        kw = dict(rate=rate, min_cutoff=cfg.min_cutoff, beta=cfg.beta, d_cutoff=cfg.d_cutoff)
        self.pose, self.betas, self.transl = (OneEuroFilter(**kw) for _ in range(3))
        self.last_frame = -2

    def __call__(self, aa: np.ndarray, betas: np.ndarray, transl: np.ndarray, frame: int):
        if frame != self.last_frame + 1:
            for f in (self.pose, self.betas, self.transl):
                f.reset()
        self.last_frame = frame
        q = continuous_quaternions(matrix_to_quaternion(axis_angle_to_matrix(aa)),
                                   self.pose.x_prev)  # fmt: skip
        q = self.pose(q)
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        self.pose.x_prev = q  # the state stays on the unit sphere
        return quaternion_to_axis_angle(q), self.betas(betas), self.transl(transl)


@jax.jit
def body_forward(body: BodyModel, betas, body_pose, global_orient, transl):
    """The body model, jitted once per process (the model is a pytree argument)."""
    return body(betas, body_pose, global_orient, transl)


class Smoother:
    """Per-track One-Euro smoothing of the frames of one video at ``fps``."""

    def __init__(self, body: BodyModel, fps: float, cfg: SmoothingConfig | None = None):
        self.cfg = cfg or SmoothingConfig()
        self.fps = float(fps)
        self.body = body
        self._tracks: dict[int, _TrackFilter] = {}
        self._frame = -1

    def __call__(self, pred: FramePrediction, track_ids: np.ndarray) -> FramePrediction:
        self._frame += 1
        n = len(track_ids)
        if n == 0:
            return pred
        aa = np.concatenate([pred.global_orient[:, None], pred.body_pose.reshape(n, 23, 3)], 1)
        new_aa, new_b, new_t = [], [], []
        for i, tid in enumerate(np.asarray(track_ids).tolist()):
            f = self._tracks.setdefault(int(tid), _TrackFilter(self.fps, self.cfg))
            a, b, t = f(aa[i], pred.betas[i], pred.transl[i], self._frame)
            new_aa.append(a), new_b.append(b), new_t.append(t)
        aa, betas, transl = (np.stack(x).astype(np.float32) for x in (new_aa, new_b, new_t))
        out = jax.device_get(body_forward(self.body, betas, aa[:, 1:], aa[:, 0], transl))
        joints = np.asarray(out.joints[:, :24], np.float64)
        return pred.replace(
            global_orient=aa[:, 0],
            body_pose=aa[:, 1:],
            betas=betas,
            transl=transl,
            vertices=np.asarray(out.vertices),
            joints_3d=joints.astype(np.float32),
            joints_2d=np.asarray(
                perspective_projection(joints, np.asarray(pred.intrinsics, np.float64)), np.float32
            ),
        )
