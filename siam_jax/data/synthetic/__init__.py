"""Procedural scenes for the embedded `siam_synthetic` dataset."""

from siam_jax.data.synthetic.prior import POSE_LIMITS_DEG, sample_betas, sample_body_pose
from siam_jax.data.synthetic.scene import SceneConfig, frame_params, generate_example

__all__ = ["POSE_LIMITS_DEG", "SceneConfig", "frame_params", "generate_example", "sample_betas",
           "sample_body_pose"]  # fmt: skip
