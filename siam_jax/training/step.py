"""The sharded train and eval steps: one ``jax.jit`` each over a 1-D ``('data',)`` mesh.

The batch is sharded on its leading axis (``P('data')``), the train state is replicated and donated.
Under ``jax.jit`` with a sharded batch every reduction in the loss (and BatchNorm's batch
statistics) is over the global batch, so 1 device and N devices compute the same step; XLA inserts
the all-reduces (this is what ``jax.pmap`` is built on since JAX 0.8).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from siam_jax.models.siam import BodyConstant
from siam_jax.training import losses as losses_lib
from siam_jax.training import state as state_lib
from siam_jax.training.state import ModelDefs, TrainState, tree_l2

# Batch keys the model and the losses read (docs/architecture.md "Batches").
# What the step moves to the devices: the model's inputs and every key the losses read
# (``losses.BATCH_KEYS``), plus ``has_smpl`` for the validation metrics.
TRAIN_KEYS = tuple(
    dict.fromkeys(
        ("image", "intrinsics", "center_cells", "person_valid", *losses_lib.BATCH_KEYS, "has_smpl")
    )
)
EVAL_KEYS = (*TRAIN_KEYS, "batch_valid")


def make_mesh() -> jax.sharding.Mesh:
    """All devices of all processes on one ``data`` axis.

    ``Auto`` axis type: the compiler propagates the batch sharding through the model (XLA inserts
    the collectives); with ``Explicit`` axes every op on a sharded array would need an
    ``out_sharding``, which model code written for one device does not give.
    """
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(batch: Mapping[str, np.ndarray], mesh, keys) -> dict[str, jax.Array]:
    """This process's rows of the global batch -> global arrays sharded on ``data``.

    Each process passes its own shard (``config.batch_size / process_count`` rows);
    ``jax.make_array_from_process_local_data`` assembles the global array without copies.
    """
    sharding = data_sharding(mesh)
    out = {}
    for k in keys:
        if k not in batch:
            raise KeyError(f"batch is missing key {k!r} (has {sorted(batch)})")
        out[k] = jax.make_array_from_process_local_data(sharding, np.asarray(batch[k]))
    return out


def _cast_floats(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def _run_model(graphdef, params, rest, body, batch):
    """Merges the model and runs it with the GT centre cells as tokens (teacher forcing).

    bf16 compute (``config.model.compute_dtype``) is the model's own: its layers compute in that
    dtype from float32 parameters, so gradients and the optimizer stay float32. Outputs are
    cast to float32 before the losses.
    """
    model = state_lib.merge(graphdef, params, rest, body)
    outputs, aux = model(
        batch["image"],
        gt_center_cells=batch["center_cells"],
        gt_valid=batch["person_valid"],
        intrinsics=batch["intrinsics"],
        return_aux=True,
    )
    _, _, _, new_rest = nnx.split(model, nnx.Param, BodyConstant, ...)
    return _cast_floats(outputs, jnp.float32), _cast_floats(aux, jnp.float32), new_rest


def compute_dtype_of(config) -> jnp.dtype:
    name = str(config.model.compute_dtype)
    if name not in ("float32", "bfloat16"):
        raise ValueError(f"config.model.compute_dtype must be float32 or bfloat16, got {name!r}")
    return jnp.dtype(name)


def _apply_update(state: TrainState, tx, grads, new_rest, decay: float) -> TrainState:
    """The optimizer update; the EMA of the parameters moves when the parameters do (with
    ``optax.MultiSteps``, at the last micro-batch of each update)."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    applied = tx.has_updated(opt_state) if isinstance(tx, optax.MultiSteps) else jnp.array(True)
    ema = state.ema
    if ema is not None:
        # ema_t = d * ema_{t-1} + (1 - d) * params_t at each update (ema_0 = params_0)
        moved = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
        ema = jax.tree.map(lambda m, e: jnp.where(applied, m, e), moved, ema)
    new_rest = jax.tree.map(lambda n, o: n.astype(o.dtype), new_rest, state.rest)
    new_state = TrainState(
        step=state.step + applied.astype(state.step.dtype),
        params=params,
        rest=new_rest,
        opt_state=opt_state,
        ema=ema,
    )
    return new_state, updates


def make_train_step(config, defs: ModelDefs, tx: optax.GradientTransformation, mesh, schedule):
    """``train_step(state, batch, body_model, body, mesh_points=None) -> (state, metrics)``,
    jitted and sharded.

    ``body_model`` is the body the losses pose GT meshes with, ``body`` the model's
    ``BodyConstant`` state (``state_lib.body_state``); neither is donated. ``batch`` is one
    micro-batch when ``tx`` is an ``optax.MultiSteps`` (``state.step`` counts updates).
    ``metrics`` holds ``loss``, ``loss_<term>`` for each term, ``l2_grads``, ``l2_params``,
    ``l2_updates``, ``learning_rate`` and ``finite`` (loss and gradients finite). A non-finite step
    does not change the state; the loop stops on it. ``mesh_points`` (static): whether the batch
    supervises keypoints that need the predicted mesh (``losses.mesh_points_supervised`` of the
    host batch; one compilation per value met), None = decided on the device by a ``lax.cond``.
    """
    weights = dict(config.loss)
    input_size = int(config.model.input_size)
    nan_at_step = int(config.debug.nan_at_step)
    decay = state_lib.ema_decay(config)

    def train_step(state: TrainState, batch, body_model, body, mesh_points=None):
        # ``rest`` goes in as an argument so NNX variables are rebuilt at the grad trace level.
        def loss_fn(params, rest):
            outputs, aux, new_rest = _run_model(defs.train, params, rest, body, batch)
            total, terms = losses_lib.compute_losses(
                outputs,
                aux,
                batch,
                body_model=body_model,
                weights=weights,
                input_size=input_size,
                mesh_points=mesh_points,
            )
            # Debug switch for the guard rail: a NaN loss at a chosen step (tests, drills).
            total = jnp.where(state.step + 1 == nan_at_step, jnp.nan, total)
            return total, (terms, new_rest)

        (loss, (terms, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.rest
        )
        l2_grads = tree_l2(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(l2_grads)
        new_state, updates = _apply_update(state, tx, grads, new_rest, decay)
        # The guard is hand-written, not ``optax.apply_if_finite``: that one looks at the
        # gradients only (not the loss, nor the BatchNorm statistics in ``rest`` that a
        # non-finite forward pass writes) and keeps training past a bad step, while this trainer
        # keeps the last finite state whole and stops, naming the steps (``loop.NonFiniteError``),
        # so no non-finite parameter is ever saved.
        new_state = jax.lax.cond(finite, lambda: new_state, lambda: state)
        metrics = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}
        metrics.update(
            l2_grads=l2_grads,
            l2_params=tree_l2(new_state.params),
            l2_updates=tree_l2(updates),
            learning_rate=schedule(state.step),
            finite=finite,
        )
        return new_state, metrics

    repl = replicated(mesh)
    return jax.jit(
        train_step,
        in_shardings=(repl, data_sharding(mesh), repl, repl),
        out_shardings=(repl, repl),
        donate_argnums=(0,),
        static_argnums=(4,),  # mesh_points, passed by position (jit takes no kwargs here)
    )


def make_eval_step(config, defs: ModelDefs, mesh):
    """``eval_step(state, batch, body_model, body) -> per-person errors`` (metres), jitted.

    Runs the EMA of the parameters when the state keeps one (``state_lib.eval_params``).
    Slots are matched to GT persons by construction: the GT centre cells are the tokens, as in
    training, so slot i predicts GT person i. Returns ``mpjpe``, ``pa_mpjpe``, ``pve`` [b t k] and
    the masks ``mask_3d`` and ``mask_smpl`` [b t k]. Errors are pelvis-aligned on the 24 SMPL
    joints / all vertices.
    """
    from siam_jax.evaluation import metrics as metrics_lib

    del config

    def eval_step(state: TrainState, batch, body_model, body):
        params = state_lib.eval_params(state)
        outputs, _, _ = _run_model(defs.eval, params, state.rest, body, batch)
        valid = batch["person_valid"] & batch["batch_valid"][:, None, None]
        pred_j = outputs["pred_keypoints_3d"]
        gt_j = batch["joints_3d"].astype(jnp.float32)
        pelvis = losses_lib.PELVIS
        pred_ja = losses_lib.pelvis_aligned(pred_j, pred_j[..., pelvis, :])
        gt_ja = losses_lib.pelvis_aligned(gt_j, gt_j[..., pelvis, :])
        gt_v, gt_pelvis = losses_lib.gt_mesh(batch, body_model)
        pred_va = losses_lib.pelvis_aligned(outputs["pred_vertices"], pred_j[..., pelvis, :])
        gt_va = losses_lib.pelvis_aligned(gt_v, gt_pelvis)
        return {
            "mpjpe": metrics_lib.mpjpe(pred_ja, gt_ja),
            "pa_mpjpe": metrics_lib.pa_mpjpe(pred_j, gt_j),
            "pve": metrics_lib.pve(pred_va, gt_va),
            "mask_3d": valid & batch["has_3d"],
            "mask_smpl": valid & batch["has_smpl"],
        }

    repl = replicated(mesh)
    return jax.jit(
        eval_step, in_shardings=(repl, data_sharding(mesh), repl, repl), out_shardings=repl
    )


def micro_batches(batch: Mapping[str, np.ndarray], k: int) -> list[dict[str, np.ndarray]]:
    """This process's rows split into ``k`` consecutive blocks, one micro-batch each (gradient
    accumulation, ``config.optimizer.accumulate_steps``)."""
    if k == 1:
        return [dict(batch)]
    rows = {len(np.asarray(v)) for v in batch.values()}
    if len(rows) != 1 or next(iter(rows)) % k:
        raise ValueError(f"batch rows {sorted(rows)} do not split into {k} micro-batches")
    n = next(iter(rows)) // k
    return [{key: np.asarray(v)[i * n : (i + 1) * n] for key, v in batch.items()} for i in range(k)]


def mean_metrics(per_micro: list[dict]) -> dict:
    """Metrics of one update from those of its micro-batches: the mean of each scalar (the last
    value of ``l2_params`` / ``learning_rate``), ``finite`` only when every one was."""
    if len(per_micro) == 1:
        return per_micro[0]
    last = per_micro[-1]
    out = {}
    for key, value in last.items():
        if key == "finite":
            out[key] = jnp.all(jnp.stack([m[key] for m in per_micro]))
        elif key in ("l2_params", "learning_rate", "l2_updates"):
            out[key] = value
        else:
            out[key] = jnp.mean(jnp.stack([m[key] for m in per_micro]))
    return out
