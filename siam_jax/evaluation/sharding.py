"""Evaluation over every device: the batch split along a ('data',) mesh, the model replicated.

``eval.py`` reads the pipeline's evaluation batches at ``config.eval.batch_size`` (global, its
own; 0 = ``config.batch_size``) and runs them through ``make_sharded_forward``: the same jitted
inference as ``forward.make_forward``, with the images and intrinsics sharded over the devices
(``NamedSharding(mesh, P('data'))``) and the outputs gathered back per row, so the results are
those of one device (tests/test_eval_sharding.py).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import ml_collections
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from siam_jax.evaluation import forward as forward_lib

AXIS = "data"


def eval_batch_size(config, num_devices: int | None = None) -> int:
    """``config.eval.batch_size`` (0: ``config.batch_size``), a multiple of the device count."""
    n = jax.device_count() if num_devices is None else int(num_devices)
    eval_cfg = config.get("eval") or {}
    b = int(eval_cfg.get("batch_size", 0) or 0) or int(config.batch_size)
    if b <= 0 or b % n:
        raise ValueError(
            f"config.eval.batch_size={b} must be a positive multiple of the {n} devices "
            "(each evaluation batch is split evenly over the 'data' mesh axis)"
        )
    return b


def with_eval_batch(config) -> ml_collections.ConfigDict:
    """A copy of ``config`` whose ``batch_size`` is the evaluation batch (what the pipeline's
    evaluation pass reads)."""
    b = eval_batch_size(config)
    out = ml_collections.ConfigDict(config.to_dict())
    out.batch_size = b
    return out


def make_mesh() -> jax.sharding.Mesh:
    # Auto axis: XLA propagates the batch sharding through the model (the FD statistics contract
    # over the batch), as the training mesh does (siam_jax.training.step.make_mesh).
    return jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def make_sharded_forward(model: nnx.Module, mesh: jax.sharding.Mesh | None = None) -> Callable:
    """``(images [b t H W 3], intrinsics [b t 3 3]) -> outputs`` of ``forward.make_forward``,
    data-parallel over ``mesh`` (default: every device); ``b`` must divide by its size."""
    mesh = make_mesh() if mesh is None else mesh
    data, repl = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    graphdef, state = nnx.split(model)
    state = jax.device_put(state, repl)

    @jax.jit
    def run(state, images, intrinsics):
        out = forward_lib._forward(graphdef, state, images, intrinsics)
        return jax.lax.with_sharding_constraint(out, data)

    def call(images, intrinsics):
        b = images.shape[0]
        if b % mesh.size:
            raise ValueError(f"evaluation batch {b} is not divisible by the {mesh.size} devices")
        return run(state, jax.device_put(images, data), jax.device_put(intrinsics, data))

    return call
