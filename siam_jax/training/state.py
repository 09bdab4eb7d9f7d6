"""The train state: an NNX model split into a pure pytree, and the optimizer.

The model is split once with ``nnx.split(model, nnx.Param, BodyConstant, ...)`` into a static
graph definition and three states: ``params`` (what the optimizer updates), the body model's
arrays (``BodyConstant``: configuration, not a trained variable, so they are neither in the
train state nor in any checkpoint; the step receives them as a non-donated argument, issue 15)
and ``rest`` (BatchNorm statistics, RNG streams). The jitted step merges them back
(``nnx.merge``), runs the model and splits the new ``rest`` out again, so the step is a pure
function of ``TrainState`` (flax NNX "functional API"). Two graph definitions are kept because
NNX stores train/eval mode (``use_running_average``, ``deterministic``) as static attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from siam_jax import checkpoints
from siam_jax.models.siam import BodyConstant


@struct.dataclass
class TrainState:
    """Everything a step reads and writes; a pytree (checkpointed as is)."""

    step: jax.Array  # int32 scalar: number of optimizer updates done
    params: Any  # nnx.State of nnx.Param
    rest: Any  # nnx.State of everything else (BatchStat, RNG streams), not the body model
    opt_state: Any  # optax state over ``params`` (optax.MultiSteps when accumulating)
    ema: Any = None  # nnx.State like ``params``: their EMA (config.optimizer.ema_decay > 0)


@dataclasses.dataclass(frozen=True)
class ModelDefs:
    """The static halves of the model: graph definitions for training and for evaluation, and
    the structure of the body-model state (``BodyConstant`` variables) the step merges in."""

    train: Any
    eval: Any
    body: Any = None  # nnx.State of BodyConstant, abstract or concrete (see ``body_state``)


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


def accumulate_steps(config) -> int:
    """``config.optimizer.accumulate_steps`` (micro-batches per optimizer update), checked."""
    k = int(config.optimizer.get("accumulate_steps", 1))
    if k < 1:
        raise ValueError(f"config.optimizer.accumulate_steps must be >= 1, got {k}")
    return k


def make_optimizer(config) -> optax.GradientTransformation:
    """AdamW with warmup + cosine decay and global-norm gradient clipping (``config.optimizer``),
    inside ``optax.MultiSteps`` when ``accumulate_steps > 1``: the mean gradient of that many
    micro-batches is clipped and applied once, and the schedule counts optimizer updates."""
    o = config.optimizer
    chain = []
    if float(o.grad_clip_norm) > 0:
        chain.append(optax.clip_by_global_norm(float(o.grad_clip_norm)))
    chain.append(
        optax.adamw(make_schedule(config), weight_decay=float(o.weight_decay), mask=_decay_mask)
    )
    tx = optax.chain(*chain)
    k = accumulate_steps(config)
    return optax.MultiSteps(tx, every_k_schedule=k) if k > 1 else tx


def ema_decay(config) -> float:
    """``config.optimizer.ema_decay`` in [0, 1); 0 = no EMA."""
    d = float(config.optimizer.get("ema_decay", 0.0))
    if not 0.0 <= d < 1.0:
        raise ValueError(f"config.optimizer.ema_decay must be in [0, 1), got {d}")
    return d


def split_model(model: nnx.Module) -> tuple[ModelDefs, Any, Any]:
    """``(defs, params, rest)`` of an NNX model; leaves the model in train mode. ``defs.body``
    holds the model's ``BodyConstant`` state (kept out of ``params`` and ``rest``)."""
    model.eval()
    graph_eval, _, _, _ = nnx.split(model, nnx.Param, BodyConstant, ...)
    model.train()
    graph_train, params, body, rest = nnx.split(model, nnx.Param, BodyConstant, ...)
    return ModelDefs(train=graph_train, eval=graph_eval, body=body), params, rest


def body_state(defs: ModelDefs, body_model) -> Any:
    """The ``BodyConstant`` state of ``defs`` filled with the arrays of ``body_model``: the
    (replicated) body passed into the steps instead of the one traced at build time."""
    return checkpoints.body_state(defs.body, body_model)


def merge(graphdef, params, rest, body) -> nnx.Module:
    """The model back from its states (fresh Variables at this trace level)."""
    return nnx.merge(graphdef, params, body, rest, copy=True)


def create_train_state(model: nnx.Module, tx: optax.GradientTransformation, ema: bool = False):
    """``(defs, state)`` for a freshly built model; ``ema``: start an EMA at the parameters."""
    defs, params, rest = split_model(model)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        rest=rest,
        opt_state=tx.init(params),
        ema=jax.tree.map(jnp.copy, params) if ema else None,
    )
    return defs, state


def eval_params(state: TrainState) -> Any:
    """The parameters validation uses: the EMA when the run keeps one."""
    return state.params if state.ema is None else state.ema


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
