"""Runs a trained SIAM on frames of any size and maps the results back to those frames.

A frame is fitted into the square network input (aspect kept, zero padding) with the same
``frame_transform`` / ``warp_image`` the input pipeline uses, so training and inference see images
prepared the same way. The network input has the model's default camera (``fov_degrees``); the
original frame's intrinsics follow from the fit: focal divided by the zoom, principal point at the
frame centre. Meshes and translations are in that camera's frame (metres), 2D keypoints in the
frame's pixels.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import UInt8

from siam_jax.body.rotations import matrix_to_axis_angle
from siam_jax.data import augment
from siam_jax.models import camera as camera_lib


@dataclasses.dataclass(frozen=True)
class FramePrediction:
    """The people found in one frame (n of them, ordered by centre score)."""

    intrinsics: np.ndarray  # [3 3] of the original frame
    scores: np.ndarray  # [n]
    global_orient: np.ndarray  # [n 3] axis-angle, camera frame
    body_pose: np.ndarray  # [n 23 3] axis-angle
    betas: np.ndarray  # [n 10]
    cam_t: np.ndarray  # [n 3] metres, camera frame
    vertices: np.ndarray  # [n 6890 3] metres, camera frame
    keypoints_3d: np.ndarray  # [n 24 3]
    keypoints_2d: np.ndarray  # [n 24 2] pixels of the original frame
    max_score: float  # best centre score in the frame, also when nobody passed the threshold


class Predictor:
    """Jitted inference over clips of ``clip_len`` frames (1 in the frame setting)."""

    def __init__(self, model: nnx.Module, config):
        self.config = config
        self.input_size = int(config.model.input_size)
        self.clip_len = int(config.model.clip_len)
        self.k_input = np.asarray(
            camera_lib.default_intrinsics(self.input_size, float(config.model.fov_degrees))
        )
        model.eval()
        graphdef, state = nnx.split(model)
        self.faces = np.asarray(model.body.get_value().faces)  # [f 3] of the model's body

        @jax.jit
        def forward(state, images, intrinsics):
            out = nnx.merge(graphdef, state)(images, intrinsics=intrinsics)
            params = out["pred_smpl_params"]
            out["global_orient_aa"] = matrix_to_axis_angle(params["global_orient"][..., 0, :, :])
            out["body_pose_aa"] = matrix_to_axis_angle(params["body_pose"])
            return out

        self._forward = forward
        self._state = state

    def _fit(self, image: np.ndarray) -> tuple[np.ndarray, augment.FrameTransform]:
        h, w = image.shape[:2]
        zoom = self.input_size / max(h, w)
        f = self.k_input[0, 0] / zoom
        k_orig = np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
        tf = augment.frame_transform((h, w), k_orig, augment.AugmentParams(), self.input_size)
        return augment.warp_image(image, tf.pixel, self.input_size), tf

    def __call__(self, frames: list[UInt8[np.ndarray, "h w 3"]]) -> list[FramePrediction]:
        """Predictions for each of ``frames`` (a clip of exactly ``clip_len`` frames)."""
        if len(frames) != self.clip_len:
            raise ValueError(f"expected a clip of {self.clip_len} frames, got {len(frames)}")
        fitted = [self._fit(f) for f in frames]
        images = np.stack([x for x, _ in fitted]).astype(np.float32)[None] / 255.0
        intr = np.stack([tf.intrinsics for _, tf in fitted]).astype(np.float32)[None]
        out = jax.device_get(self._forward(self._state, jnp.asarray(images), jnp.asarray(intr)))
        results = []
        for i, (_, tf) in enumerate(fitted):
            valid = np.asarray(out["valid"][0, i], bool)
            order = np.argsort(-np.asarray(out["scores"][0, i]))
            keep = order[valid[order]]
            inv = np.linalg.inv(tf.pixel)
            kp2d = out["pred_keypoints_2d"][0, i][keep]
            kp2d = kp2d @ inv[:2, :2].T + inv[:2, 2]
            results.append(
                FramePrediction(
                    intrinsics=np.linalg.inv(tf.pixel) @ tf.intrinsics,
                    scores=out["scores"][0, i][keep],
                    global_orient=out["global_orient_aa"][0, i][keep],
                    body_pose=out["body_pose_aa"][0, i][keep],
                    betas=out["pred_smpl_params"]["betas"][0, i][keep],
                    cam_t=out["pred_cam_t"][0, i][keep],
                    vertices=out["pred_vertices"][0, i][keep],
                    keypoints_3d=out["pred_keypoints_3d"][0, i][keep],
                    keypoints_2d=kp2d,
                    max_score=float(np.max(out["scores"][0, i], initial=0.0)),
                )
            )
        return results
