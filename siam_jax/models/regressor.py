"""HMR-style iterative error feedback regressor: pose (24 x 6D), betas (10), camera (3).

Three heads (pose, shape, camera), each reading its own feature (the FD factors, or the token
itself when FD is off) concatenated with the current full parameter vector, and adding a
correction; 3 iterations from the mean parameters (Kanazawa et al. CVPR'18; SPIN models/hmr.py).
The last layer of each head starts with small weights (Xavier, gain 0.01, as SPIN's decpose/
decshape/deccam), so the first prediction is close to the mean parameters.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float

from siam_jax.models.mean_params import CAM_DIM, NUM_BETAS, PARAM_DIM, POSE_DIM


class MeanParam(nnx.Variable):
    """A constant buffer (not trained): the regressor's starting parameters."""


def _small_xavier(key, shape, dtype=jnp.float32):
    # xavier_uniform(gain=0.01): bound = 0.01 * sqrt(6 / (fan_in + fan_out)).
    bound = 0.01 * np.sqrt(6.0 / (shape[0] + shape[1]))
    return nnx.initializers.uniform(2 * bound)(key, shape, dtype) - bound


class Head(nnx.Module):
    def __init__(self, d: int, hidden: int, out: int, *, rngs: nnx.Rngs, dtype=None):
        self.fc1 = nnx.Linear(d + PARAM_DIM, hidden, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, hidden, dtype=dtype, rngs=rngs)
        self.dec = nnx.Linear(hidden, out, kernel_init=_small_xavier, dtype=dtype, rngs=rngs)

    def __call__(self, feat, params):
        x = jnp.concatenate([feat, params.astype(feat.dtype)], axis=-1)
        return self.dec(nnx.relu(self.fc2(nnx.relu(self.fc1(x)))))


class IterativeRegressor(nnx.Module):
    def __init__(
        self,
        d: int,
        hidden: int,
        mean_params: dict[str, np.ndarray],
        *,
        num_iterations: int = 3,
        rngs: nnx.Rngs,
        dtype=None,
    ):
        self.num_iterations = num_iterations
        self.mean = MeanParam(
            jnp.concatenate(
                [jnp.asarray(mean_params[k], jnp.float32) for k in ("pose", "shape", "cam")]
            )
        )
        self.pose = Head(d, hidden, POSE_DIM, rngs=rngs, dtype=dtype)
        self.shape = Head(d, hidden, NUM_BETAS, rngs=rngs, dtype=dtype)
        self.camera = Head(d, hidden, CAM_DIM, rngs=rngs, dtype=dtype)

    def __call__(
        self,
        pose_feat: Float[Array, "... d"],
        shape_feat: Float[Array, "... d"],
        cam_feat: Float[Array, "... d"],
    ) -> tuple[Float[Array, "... 144"], Float[Array, "... 10"], Float[Array, "... 3"]]:
        """Final (pose6d, betas, cam) after ``num_iterations`` corrections, float32."""
        batch = pose_feat.shape[:-1]
        params = jnp.broadcast_to(self.mean[...], (*batch, PARAM_DIM)).astype(jnp.float32)
        for _ in range(self.num_iterations):
            delta = jnp.concatenate(
                [
                    self.pose(pose_feat, params),
                    self.shape(shape_feat, params),
                    self.camera(cam_feat, params),
                ],
                axis=-1,
            )
            params = params + delta.astype(jnp.float32)
        return (
            params[..., :POSE_DIM],
            params[..., POSE_DIM : POSE_DIM + NUM_BETAS],
            params[..., POSE_DIM + NUM_BETAS :],
        )
