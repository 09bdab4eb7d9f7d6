"""Loading a trained SIAM model for inference (demo, evaluation) from a training workdir."""

from __future__ import annotations

import os

import jax
from flax import nnx


def checkpoint_dir(path: str) -> str:
    """``path`` may be a training workdir (holding ``checkpoints/``) or that folder itself."""
    path = os.path.abspath(path)
    inner = os.path.join(path, "checkpoints")
    return inner if os.path.isdir(inner) else path


def load_model(config, path: str, step: int | None = None) -> tuple[nnx.Module, int]:
    """The model of ``config`` with the parameters of checkpoint ``step`` (default: latest) in
    ``path``, in eval mode. Raises FileNotFoundError naming the folder if there is none, and
    ValueError naming the first mismatched key for a checkpoint of another architecture."""
    from siam_jax import models
    from siam_jax.training import checkpointing
    from siam_jax.training import state as state_lib

    directory = checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"checkpoint folder {directory} does not exist")
    body_model = models.load_body_model(config.model)
    tx = state_lib.make_optimizer(config)
    defs: dict = {}

    def init():
        model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body_model)
        defs["defs"], state = state_lib.create_train_state(model, tx)
        return state

    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), jax.eval_shape(init)
    )
    ckpt = checkpointing.Checkpointer(directory, keep=1_000_000, async_save=False)
    try:
        steps = ckpt.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {directory}: train first")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise FileNotFoundError(f"no checkpoint for step {step} in {directory}; have {steps}")
        state, _ = ckpt.restore(step, abstract, with_data=False)
    finally:
        ckpt.close()
    model = nnx.merge(defs["defs"].eval, state.params, state.rest)
    model.eval()
    return model, int(step)
