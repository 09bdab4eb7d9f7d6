"""Orbax checkpoints of a training state and the data-iterator state.

One checkpoint step ``DIR/<step>/`` holds three items (``ocp.args.Composite``):

- ``model``: ``{"params", "rest"}`` of the state (``StandardSave``): what evaluation, the demo
  and ``config.init_checkpoint`` read, so they restore the model without building an optimizer;
- ``train``: every other field of the state (the step counter, the optimizer state);
- ``data``: each process's input-iterator state, through Grain's own handler (``iterator_state``);
- ``meta``: a JSON dict of facts about the run that readers check (``META_*`` keys below: the
  body model's digest, the detection threshold chosen on validation, the training datasets).

The state is any dataclass pytree with ``params`` and ``rest`` fields (the trainer's
``TrainState``: step, params, rest, opt_state, ema); of its other fields only ``ema`` is known
here (``restore_ema``: evaluation and the demo run the EMA when the state keeps one). RNG key
arrays are stored as their key data (``keys``). Saves are asynchronous unless asked otherwise;
``wait()`` blocks until the last one is committed. Each item's saved tree is compared with the
expected one before it is read (``compat.check_compatible``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import orbax.checkpoint as ocp
from absl import logging

from siam_jax.checkpoints import iterator_state, keys
from siam_jax.checkpoints.compat import check_compatible
from siam_jax.common.files import jsonable

MODEL_ITEM, TRAIN_ITEM, DATA_ITEM, META_ITEM = "model", "train", iterator_state.ITEM, "meta"
MODEL_FIELDS = ("params", "rest")
# The optional field of a state (in the ``train`` item) that evaluation reads when present: the
# EMA of the parameters (``siam_jax.training.state.TrainState.ema``; None = not kept).
EMA_FIELD = "ema"

# Keys of the ``meta`` item that readers rely on (all optional; JSON values).
META_BODY_MODEL = "body_model"  # {"kind": "smpl"|"procedural", "path": str|None, "digest": str}
META_CENTER_THRESHOLD = "center_threshold"  # float: the centre-score threshold of best val F1
META_TRAIN_DATASETS = "train_datasets"  # list[str]: dataset names of the training mixture


def check_body_model(meta: dict, expected: dict | None, where: str) -> None:
    """Raises ``ValueError`` naming both digests when the checkpoint's ``meta`` records another
    body model than ``expected`` (``body.describe_body_model``). A checkpoint without the record
    (written before it existed) passes with a warning: nothing to compare."""
    if expected is None:
        return
    saved = meta.get(META_BODY_MODEL)
    if not saved:
        logging.warning("%s: the checkpoint records no body model; not checked", where)
        return
    if saved.get("digest") != expected.get("digest"):
        raise ValueError(
            f"{where}: the checkpoint was trained with body model {saved.get('digest')} "
            f"({saved.get('kind')}, path {saved.get('path')}), this run uses "
            f"{expected.get('digest')} ({expected.get('kind')}, path {expected.get('path')}); "
            "set config.model.body_model to the one it was trained with"
        )


class ModelState(NamedTuple):
    """The model half of a state: ``params`` (nnx.Param) and ``rest`` (BatchNorm statistics,
    RNG streams), as ``nnx.split(model, nnx.Param, ...)`` gives them."""

    params: Any
    rest: Any


def _split(state) -> tuple[dict, dict]:
    """``(model item, train item)`` trees of a state dataclass."""
    fields = [f.name for f in dataclasses.fields(state)]
    missing = [f for f in MODEL_FIELDS if f not in fields]
    if missing:
        raise TypeError(f"{type(state).__name__} lacks the fields {missing} of a model state")
    model = {f: getattr(state, f) for f in MODEL_FIELDS}
    train = {f: getattr(state, f) for f in fields if f not in MODEL_FIELDS}
    return model, train


def _item_handlers() -> dict:
    # Named up front so a fresh manager can read the metadata of existing checkpoints.
    return {
        MODEL_ITEM: ocp.StandardCheckpointHandler(),
        TRAIN_ITEM: ocp.StandardCheckpointHandler(),
        DATA_ITEM: iterator_state.handler(),
        META_ITEM: ocp.JsonCheckpointHandler(),
    }


class Checkpointer:
    """``CheckpointManager`` over ``directory`` with the state's items and the iterator state.

    ``keep``: the number of steps kept (None: all). ``create=False`` opens an existing folder
    for reading only (evaluation, the demo, ``init_checkpoint``).
    """

    def __init__(
        self,
        directory: str,
        *,
        keep: int | None = None,
        async_save: bool = True,
        create: bool = True,
    ):
        self.directory = os.path.abspath(directory)
        if not create and not os.path.isdir(self.directory):
            raise FileNotFoundError(f"{self.directory}: no checkpoint directory")
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers=_item_handlers(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=None if keep is None else int(keep),
                create=create,
                enable_async_checkpointing=async_save,
            ),
        )

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state, data_state: Any | None, meta: dict | None = None) -> None:
        """Saves ``state`` (a dataclass with ``params`` and ``rest``), the iterator state
        captured at ``step`` (any JSON-able ``get_state()`` value, or None) and ``meta`` (a
        JSON-able dict, or None)."""
        model, train = _split(state)
        items = {
            MODEL_ITEM: ocp.args.StandardSave(keys.to_saveable(model)),
            TRAIN_ITEM: ocp.args.StandardSave(keys.to_saveable(train)),
        }
        if data_state is not None:
            items[DATA_ITEM] = iterator_state.save_args(data_state)
        if meta is not None:
            items[META_ITEM] = ocp.args.JsonSave(jsonable(dict(meta)))
        self.manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def _where(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _target(self, step: int, item: str, abstract) -> Any:
        """The restore target of ``item`` at ``step``, checked against the saved tree."""
        where = self._where(step)
        if not os.path.isdir(os.path.join(where, item)):
            have = sorted(os.listdir(where)) if os.path.isdir(where) else []
            raise ValueError(
                f"{where}: no {item!r} item in this checkpoint (it holds {have}; one 'state' "
                "item is the layout written before siam_jax.checkpoints, not read any more)"
            )
        target = keys.abstract_saveable(abstract)
        check_compatible(self.manager.item_metadata(step)[item], target, where)
        return target

    def restore_model(self, step: int, abstract: ModelState) -> ModelState:
        """The ``model`` item at ``step`` alone; ``abstract`` gives structure and shardings."""
        tree = {"params": abstract.params, "rest": abstract.rest}
        target = self._target(step, MODEL_ITEM, tree)
        args = ocp.args.Composite(**{MODEL_ITEM: ocp.args.StandardRestore(target)})
        restored = keys.from_saveable(self.manager.restore(int(step), args=args)[MODEL_ITEM], tree)
        return ModelState(restored["params"], restored["rest"])

    def restore_ema(self, step: int, abstract_params) -> Any | None:
        """The ``ema`` field of the state saved at ``step`` (``EMA_FIELD`` of the ``train``
        item: the trainer's EMA of the parameters), or None when that state kept none.

        Reads that subtree alone (Orbax partial restore: no optimizer state is read or needs a
        target); ``abstract_params`` (the model's abstract ``params``) gives structure and
        shardings and is checked against the saved tree."""
        where = self._where(step)
        if not os.path.isdir(os.path.join(where, TRAIN_ITEM)):
            return None  # a model-only checkpoint: no EMA to read
        saved = self.manager.item_metadata(step)[TRAIN_ITEM]
        if not saved or EMA_FIELD not in saved.keys() or not saved[EMA_FIELD]:
            return None
        check_compatible(saved[EMA_FIELD], abstract_params, f"{where} ({TRAIN_ITEM}.{EMA_FIELD})")
        target = {EMA_FIELD: abstract_params}
        args = ocp.args.PyTreeRestore(
            item=target,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True,
        )
        with ocp.PyTreeCheckpointer() as reader:
            return reader.restore(os.path.join(where, TRAIN_ITEM), args=args)[EMA_FIELD]

    def restore(self, step: int, abstract_state, *, with_data: bool = True):
        """``(state, data_state)`` at ``step``; ``abstract_state`` (the state dataclass of
        ``ShapeDtypeStruct`` leaves) gives structure and shardings. ``data_state`` is None when
        the checkpoint has none or ``with_data`` is False."""
        model, train = _split(abstract_state)
        targets = {
            MODEL_ITEM: self._target(step, MODEL_ITEM, model),
            TRAIN_ITEM: self._target(step, TRAIN_ITEM, train),
        }
        items = {k: ocp.args.StandardRestore(v) for k, v in targets.items()}
        data_dir = os.path.join(self._where(step), DATA_ITEM)
        if with_data and os.path.isdir(data_dir):
            iterator_state.check_present(data_dir)
            items[DATA_ITEM] = iterator_state.restore_args()
        restored = self.manager.restore(int(step), args=ocp.args.Composite(**items))
        fields = keys.from_saveable(restored[MODEL_ITEM], model)
        fields.update(keys.from_saveable(restored[TRAIN_ITEM], train))
        state = dataclasses.replace(abstract_state, **fields)
        data = iterator_state.restored_state(restored[DATA_ITEM]) if DATA_ITEM in items else None
        return state, data

    def read_meta(self, step: int) -> dict:
        """The ``meta`` dict saved at ``step``; ``{}`` for a checkpoint written without one."""
        if not os.path.isdir(os.path.join(self._where(step), META_ITEM)):
            return {}
        args = ocp.args.Composite(**{META_ITEM: ocp.args.JsonRestore()})
        return dict(self.manager.restore(int(step), args=args)[META_ITEM] or {})

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def restore_params_from(directory: str, abstract_state, body_model: dict | None = None):
    """``params`` and ``rest`` of the latest checkpoint in another run's directory
    (``config.init_checkpoint``); the optimizer starts fresh. ``abstract_state``: any object
    with abstract ``params`` and ``rest`` (the trainer's abstract ``TrainState``);
    ``body_model``: the run's ``META_BODY_MODEL`` record, checked (``check_body_model``)."""
    where = os.path.abspath(directory)
    if not os.path.isdir(where):
        raise FileNotFoundError(f"config.init_checkpoint={directory!r}: no such directory")
    with Checkpointer(where, async_save=False, create=False) as ckpt:
        step = ckpt.latest_step()
        if step is None:
            raise FileNotFoundError(
                f"config.init_checkpoint={directory!r}: no checkpoint found there"
            )
        check_body_model(ckpt.read_meta(step), body_model, ckpt._where(step))
        return ckpt.restore_model(step, ModelState(abstract_state.params, abstract_state.rest))
