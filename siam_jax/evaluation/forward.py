"""The network in inference mode, jitted: top-k centre peaks above the threshold, no GT cells,
the batch's intrinsics; only the outputs evaluation reads come back, in float32."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

# Model outputs the evaluation reads (docs/architecture.md, model output vocabulary).
EVAL_OUTPUT_KEYS = (
    "valid",
    "scores",
    "centers",
    "pred_smpl_params",
    "pred_cam_t",
    "pred_vertices",
    "pred_keypoints_3d",
    "pred_keypoints_2d",
)


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, images, intrinsics):
    out = nnx.merge(graphdef, state)(images, intrinsics=intrinsics)
    out = {k: out[k] for k in EVAL_OUTPUT_KEYS}
    return jax.tree.map(
        lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, out
    )


def make_forward(model: nnx.Module) -> Callable:
    """Jitted inference ``(images [b t H W 3], intrinsics [b t 3 3]) -> outputs``; one
    compilation per model structure and input shape (module-level jit)."""
    graphdef, state = nnx.split(model)
    return lambda images, intrinsics: _forward(graphdef, state, images, intrinsics)
