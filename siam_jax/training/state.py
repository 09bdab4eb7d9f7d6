"""The train state: an NNX model split into a pure pytree, and the optimizer.

The model is split once with ``nnx.split(model, nnx.Param, ...)`` into a static graph definition
and two states: ``params`` (what the optimizer updates) and ``rest`` (BatchNorm statistics, RNG
streams). The jitted step merges them back (``nnx.merge``), runs the model and splits the new
``rest`` out again, so the step is a pure function of ``TrainState`` (flax NNX "functional API").
Two graph definitions are kept because NNX stores train/eval mode (``use_running_average``,
``deterministic``) as static attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@struct.dataclass
class TrainState:
    """Everything a step reads and writes; a pytree (checkpointed as is)."""

    step: jax.Array  # int32 scalar: number of optimizer updates done
    params: Any  # nnx.State of nnx.Param
    rest: Any  # nnx.State of everything else (BatchStat, RNG streams)
    opt_state: Any  # optax state over ``params``


@dataclasses.dataclass(frozen=True)
class ModelDefs:
    """The static halves of the model: graph definitions for training and for evaluation."""

    train: Any
    eval: Any


def make_schedule(config) -> optax.Schedule:
    """Linear warmup from 0 to ``optimizer.learning_rate``, then cosine decay to
    ``learning_rate * end_learning_rate_factor`` at ``total_steps``."""
    o = config.optimizer
    total = int(config.total_steps)
    warmup = min(int(o.warmup_steps), max(total - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=float(o.learning_rate),
        warmup_steps=warmup,
        decay_steps=max(total, warmup + 1),
        end_value=float(o.learning_rate) * float(o.end_learning_rate_factor),
    )


def _decay_mask(params):
    # No weight decay on biases and normalisation scales (1-D parameters), as is usual for AdamW
    # (big_vision, timm: param groups without weight decay for ndim <= 1).
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(config) -> optax.GradientTransformation:
    """AdamW with warmup + cosine decay and global-norm gradient clipping (``config.optimizer``)."""
    o = config.optimizer
    chain = []
    if float(o.grad_clip_norm) > 0:
        chain.append(optax.clip_by_global_norm(float(o.grad_clip_norm)))
    chain.append(
        optax.adamw(make_schedule(config), weight_decay=float(o.weight_decay), mask=_decay_mask)
    )
    return optax.chain(*chain)


def split_model(model: nnx.Module) -> tuple[ModelDefs, Any, Any]:
    """``(defs, params, rest)`` of an NNX model; leaves the model in train mode."""
    model.eval()
    graph_eval, _, _ = nnx.split(model, nnx.Param, ...)
    model.train()
    graph_train, params, rest = nnx.split(model, nnx.Param, ...)
    return ModelDefs(train=graph_train, eval=graph_eval), params, rest


def create_train_state(model: nnx.Module, tx: optax.GradientTransformation):
    """``(defs, state)`` for a freshly built model."""
    defs, params, rest = split_model(model)
    state = TrainState(
        step=jnp.zeros((), jnp.int32), params=params, rest=rest, opt_state=tx.init(params)
    )
    return defs, state


def tree_l2(tree) -> jax.Array:
    """Global L2 norm of all floating leaves of a pytree."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def all_finite(tree) -> jax.Array:
    """True when every floating leaf of the pytree is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    if not leaves:
        return jnp.ones((), bool)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
