"""A trained SIAM back from the checkpoints training wrote, for evaluation and the demo.

Reads only the checkpoint's ``model`` item (``manager``): the abstract target is the model's own
``nnx.split(model, nnx.Param, BodyConstant, ...)`` traced with ``jax.eval_shape`` (nothing
allocated), so no optimizer and nothing of ``siam_jax.training`` is needed. The body model is
configuration, not a checkpointed variable (issue 15): its arrays come from the config, and a
checkpoint trained with another body model (``META_BODY_MODEL`` digest) is refused.
The centre-score threshold is the one chosen on validation and stored in the
checkpoint's ``meta`` (``META_CENTER_THRESHOLD``) unless the config sets
``model.center.threshold`` (``center_threshold``).
The weights are the EMA of the parameters when the checkpoint's state keeps one
(``TrainState.ema``, the ones validation scored during training), unless the config sets
``eval.use_ema = False`` (``use_ema``); the restored model's ``weights_source`` says which
(``"ema"`` or ``"params"``), and the choice is logged.
"""

from __future__ import annotations

import os

import jax
from absl import logging
from flax import nnx

from siam_jax import body as body_lib
from siam_jax import models
from siam_jax.checkpoints.manager import (
    META_BODY_MODEL,
    META_CENTER_THRESHOLD,
    Checkpointer,
    ModelState,
    check_body_model,
)
from siam_jax.models.siam import BodyConstant


def checkpoint_dir(path: str) -> str:
    """``path`` may be a training workdir (holding ``checkpoints/``) or that folder itself."""
    path = os.path.abspath(path)
    inner = os.path.join(path, "checkpoints")
    return inner if os.path.isdir(inner) else path


def _pick_step(directory: str, steps: list[int], step: int | None) -> int:
    if not steps:
        raise FileNotFoundError(f"{directory}: holds no checkpoint")
    if step is None:
        return max(steps)
    if int(step) not in steps:
        raise FileNotFoundError(f"{directory}: no checkpoint at step {step} (have {steps})")
    return int(step)


def body_state(abstract_body, body_model):
    """The ``BodyConstant`` state of a split model (``abstract_body``: its structure, abstract
    or not) holding the arrays of ``body_model`` (the model holds one body: its variable's value
    is that pytree)."""
    treedef = jax.tree.structure(abstract_body)
    leaves = jax.tree.leaves(body_model)
    if treedef.num_leaves == 0:
        return abstract_body  # a model without a body constant
    if treedef.num_leaves != len(leaves):
        raise ValueError(
            f"the model's BodyConstant state has {treedef.num_leaves} arrays, the body model "
            f"{len(leaves)}: does the model hold one body model?"
        )
    return jax.tree.unflatten(treedef, leaves)


def abstract_model(config, body_model) -> tuple[nnx.GraphDef, ModelState, object]:
    """``(graph definition in eval mode, abstract ModelState, the model's BodyConstant state
    filled with body_model)`` of the config's model, its arrays on the first device (evaluation
    and the demo run on one host, unsharded)."""
    graph = {}

    def init() -> ModelState:
        model = models.build_model(
            config.model, rngs=nnx.Rngs(int(config.seed)), body_model=body_model
        )
        model.eval()  # NNX keeps train/eval mode in the (static) graph definition
        graph["def"], params, body, rest = nnx.split(model, nnx.Param, BodyConstant, ...)
        graph["body"] = jax.tree.structure(body)
        return ModelState(params, rest)

    abstract = jax.eval_shape(init)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
    )
    body = jax.device_put(jax.tree.unflatten(graph["body"], jax.tree.leaves(body_model)), device)
    return graph["def"], abstract, body


def center_threshold(config, meta: dict) -> float | None:
    """The detection threshold a restored model applies: ``config.model.center.threshold`` when
    set (the user's ``--config.model.center.threshold``), else the checkpoint's
    ``META_CENTER_THRESHOLD``; None when neither is set (the model keeps its built-in default)."""
    configured = config.model.center.get("threshold")
    if configured is not None:
        return float(configured)
    stored = meta.get(META_CENTER_THRESHOLD)
    return None if stored is None else float(stored)


def use_ema(config) -> bool:
    """``config.eval.use_ema`` (default True): evaluate the EMA when the checkpoint has one."""
    ev = config.get("eval")
    return True if ev is None else bool(ev.get("use_ema", True))


def _weights(ckpt: Checkpointer, step: int, abstract: ModelState, restored: ModelState, config):
    """``(params, "ema" | "params")``: the EMA when kept and wanted (``use_ema``); logged."""
    ema = ckpt.restore_ema(step, abstract.params) if use_ema(config) else None
    if ema is not None:
        how, out = "the EMA of the parameters", (ema, "ema")
    elif not use_ema(config):
        how, out = "the raw parameters (config.eval.use_ema=False)", (restored.params, "params")
    else:
        how, out = "the raw parameters (the checkpoint keeps no EMA)", (restored.params, "params")
    logging.info("restored %s step %d: %s", ckpt.directory, step, how)
    return out


def restore_model(config, path: str, step: int | None = None, body_model=None):
    """``(model in eval mode, step)`` from the checkpoints that training wrote in ``path`` (a
    workdir or its ``checkpoints/`` folder), at ``step`` or the latest.

    Errors name the folder (and the steps it has); a checkpoint of another architecture fails on
    the first mismatched key (``check_compatible``), one trained with another body model names
    both digests. ``body_model`` (default: the config's) is the body the model poses meshes with.
    The model's centre threshold is ``center_threshold`` of the config and the checkpoint; its
    weights the checkpoint's EMA when it keeps one and ``use_ema(config)`` (module doc).
    """
    directory = checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no checkpoint directory (train into it first)")
    if body_model is None:
        body_model = models.load_body_model(config.model)
    expected = body_lib.describe_body_model(config.model.body_model, body_model)
    with Checkpointer(directory, async_save=False, create=False) as ckpt:
        step = _pick_step(directory, ckpt.all_steps(), step)
        meta = ckpt.read_meta(step)
        threshold = center_threshold(config, meta)
        check_body_model(meta, expected, os.path.join(directory, str(step)))
        graphdef, abstract, body = abstract_model(config, body_model)
        restored = ckpt.restore_model(step, abstract)
        params, source = _weights(ckpt, step, abstract, restored, config)
    model = nnx.merge(graphdef, params, body, restored.rest)
    model.eval()
    model.weights_source = source  # static: which weights this model runs (module doc)
    if threshold is not None:
        model.threshold = threshold  # static (graph definition): jitted forwards see it
    return model, step


__all__ = [
    "META_BODY_MODEL",
    "abstract_model",
    "body_state",
    "checkpoint_dir",
    "restore_model",
    "use_ema",
]
