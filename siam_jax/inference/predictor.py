"""Runs a trained SIAM on frames of any size and maps the results back to those frames.

A frame is fitted into the square network input (aspect kept, zero padding: letterboxing) with
the same ``frame_transform`` / ``warp_image`` the input pipeline uses, so training and inference
see images prepared the same way. The frame's camera K comes from ``Camera`` (``--fov`` /
``--intrinsics``, siam_jax/inference/intrinsics.py); the letterbox's pixel affine A maps it to
the network input's camera ``A K``, which the model's camera-to-translation uses. Meshes and
translations are in that camera's frame (metres), 2D joints in the original frame's pixels
(the model's projection in input pixels mapped back by A^-1, i.e. the projection through K).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import UInt8

from siam_jax.body.rotations import matrix_to_axis_angle
from siam_jax.data import augment
from siam_jax.inference.intrinsics import Camera


@dataclasses.dataclass(frozen=True)
class FramePrediction:
    """The people found in one frame (n of them, ordered by centre score); smplx names."""

    intrinsics: np.ndarray  # [3 3] of the original frame
    image_size: tuple[int, int]  # (height, width) of the original frame
    scores: np.ndarray  # [n]
    global_orient: np.ndarray  # [n 3] axis-angle, camera frame
    body_pose: np.ndarray  # [n 23 3] axis-angle
    betas: np.ndarray  # [n nb]
    transl: np.ndarray  # [n 3] metres, camera frame (smplx transl)
    vertices: np.ndarray  # [n 6890 3] metres, camera frame
    joints_3d: np.ndarray  # [n 24 3] SMPL joints, metres, camera frame
    joints_2d: np.ndarray  # [n 24 2] pixels of the original frame
    max_score: float  # best centre score in the frame, also when nobody passed the threshold

    def replace(self, **changes) -> FramePrediction:
        return dataclasses.replace(self, **changes)


class Predictor:
    """Jitted inference over clips of ``clip_len`` frames (1 in the frame setting).

    ``model_seconds`` accumulates the wall time of the jitted forward (device transfer in and
    out included), the model-only share of the demo's time.
    """

    def __init__(
        self,
        model: nnx.Module,
        config,
        camera: Camera | None = None,
        *,
        max_people: int | None = None,
    ):
        self.config = config
        self.input_size = int(config.model.input_size)
        self.clip_len = int(config.model.clip_len)
        self.camera = camera or Camera(fov_degrees=float(config.model.fov_degrees))
        self.max_people = max_people  # keep at most this many (best scores) per frame
        self.model_seconds = 0.0
        self.model_calls = 0
        model.eval()
        graphdef, state = nnx.split(model)
        self.body = model.body.get_value()
        self.faces = np.asarray(self.body.faces)  # [f 3] of the model's body

        self._graphdef = graphdef
        self._state = state

    def fit(self, image: np.ndarray) -> tuple[np.ndarray, augment.FrameTransform]:
        """The letterboxed network input of ``image`` and its camera change."""
        hw = image.shape[:2]
        tf = augment.frame_transform(
            hw, self.camera.matrix(hw), augment.AugmentParams(), self.input_size
        )
        return augment.warp_image(image, tf.pixel, self.input_size), tf

    def __call__(self, frames: list[UInt8[np.ndarray, "h w 3"]]) -> list[FramePrediction]:
        """Predictions for each of ``frames`` (a clip of exactly ``clip_len`` frames)."""
        if len(frames) != self.clip_len:
            raise ValueError(f"expected a clip of {self.clip_len} frames, got {len(frames)}")
        fitted = [self.fit(f) for f in frames]
        images = np.stack([x for x, _ in fitted]).astype(np.float32)[None] / 255.0
        intr = np.stack([tf.intrinsics for _, tf in fitted]).astype(np.float32)[None]
        start = time.perf_counter()
        out = jax.device_get(
            _forward(self._graphdef, self._state, jnp.asarray(images), jnp.asarray(intr))
        )
        self.model_seconds += time.perf_counter() - start
        self.model_calls += 1
        return [
            frame_prediction(out, i, tf, f.shape[:2], self.max_people)
            for i, ((_, tf), f) in enumerate(zip(fitted, frames, strict=True))
        ]


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, images, intrinsics):
    """The model with axis-angle outputs; one compilation per model structure and input shape
    (``graphdef`` is static), shared by every ``Predictor`` of the process."""
    out = nnx.merge(graphdef, state)(images, intrinsics=intrinsics)
    params = out["pred_smpl_params"]
    out["global_orient_aa"] = matrix_to_axis_angle(params["global_orient"][..., 0, :, :])
    out["body_pose_aa"] = matrix_to_axis_angle(params["body_pose"])
    return out


def frame_prediction(
    out: dict, i: int, tf: augment.FrameTransform, hw, max_people: int | None
) -> FramePrediction:
    """Frame ``i`` of the clip output ``out``: valid slots by score, 2D back in frame pixels."""
    valid = np.asarray(out["valid"][0, i], bool)
    order = np.argsort(-np.asarray(out["scores"][0, i]))
    keep = order[valid[order]][:max_people]
    inv = np.linalg.inv(tf.pixel)
    kp2d = out["pred_keypoints_2d"][0, i][keep]
    return FramePrediction(
        intrinsics=inv @ tf.intrinsics,
        image_size=(int(hw[0]), int(hw[1])),
        scores=out["scores"][0, i][keep],
        global_orient=out["global_orient_aa"][0, i][keep],
        body_pose=out["body_pose_aa"][0, i][keep],
        betas=out["pred_smpl_params"]["betas"][0, i][keep],
        transl=out["pred_cam_t"][0, i][keep],
        vertices=out["pred_vertices"][0, i][keep],
        joints_3d=out["pred_keypoints_3d"][0, i][keep],
        joints_2d=kp2d @ inv[:2, :2].T + inv[:2, 2],
        max_score=float(np.max(out["scores"][0, i], initial=0.0)),
    )
