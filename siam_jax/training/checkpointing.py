"""Orbax checkpoints of the train state and the data-iterator state.

One checkpoint step holds two items (``ocp.args.Composite``):
- ``state``: the ``TrainState`` pytree (``StandardSave``); RNG key arrays are stored as their raw
  key data and re-wrapped on restore (Orbax stores plain arrays).
- ``data``: each process's input-iterator state, one JSON file per process
  (``process_{i}-of-{n}.json``, the layout of Grain's own Orbax handler), captured on the host at
  the step it belongs to, so an async save never races the iterator.

Saves are asynchronous; ``wait()`` blocks until the last one is committed. Before restoring, the
saved tree is compared with the expected one, so a checkpoint of another architecture fails with
the first key that differs instead of a deep Orbax/tensorstore error.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath


# ------------------------------------------------------------------------------ data item
class IteratorStateHandler(ocp.CheckpointHandler):
    """Per-process JSON state of the input iterator (any ``get_state()`` dict)."""

    def save(self, directory: epath.Path, args: IteratorStateSave):
        i, n = jax.process_index(), jax.process_count()
        path = epath.Path(directory) / f"process_{i}-of-{n}.json"
        tmp = path.parent / (path.name + ".tmp")
        tmp.write_text(json.dumps(args.state, indent=1))
        tmp.rename(path)

    def restore(self, directory: epath.Path, args: IteratorStateRestore | None = None):
        i, n = jax.process_index(), jax.process_count()
        path = epath.Path(directory) / f"process_{i}-of-{n}.json"
        if not path.exists():
            found = sorted(p.name for p in epath.Path(directory).glob("*.json"))
            raise ValueError(
                f"{path}: no data-iterator state for process {i} of {n} (found {found}); "
                "was the checkpoint written with another number of processes?"
            )
        return json.loads(path.read_text())

    def metadata(self, directory: epath.Path):
        return None

    def structure(self, directory: epath.Path):
        return None

    def finalize(self, directory: epath.Path):
        pass

    def close(self):
        pass


@ocp.args.register_with_handler(IteratorStateHandler, for_save=True)
@dataclasses.dataclass
class IteratorStateSave(ocp.args.CheckpointArgs):
    state: Any


@ocp.args.register_with_handler(IteratorStateHandler, for_restore=True)
@dataclasses.dataclass
class IteratorStateRestore(ocp.args.CheckpointArgs):
    pass


# ------------------------------------------------------------------------------ key arrays
def is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(tree):
    """Typed PRNG key leaves -> their uint32 key data."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def _abstract_saveable(abstract):
    def leaf(x):
        if is_key(x):
            data = jax.eval_shape(jax.random.key_data, x)
            return jax.ShapeDtypeStruct(
                data.shape, data.dtype, sharding=getattr(x, "sharding", None)
            )
        return x

    return jax.tree.map(leaf, abstract)


def _from_saveable(restored, abstract):
    def leaf(r, a):
        if is_key(a):
            # the key implementation lives on the key dtype (threefry, rbg, ...)
            return jax.random.wrap_key_data(r, impl=getattr(a.dtype, "_impl", None))
        return r

    return jax.tree.map(leaf, restored, abstract)


# ------------------------------------------------------------------------------ tree checks
def _path_name(path) -> str:
    parts = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
        else:
            parts.append(str(p))
    # nnx.Variable leaves appear as ``.value`` in some trees and not in others.
    if parts and parts[-1] == "value":
        parts = parts[:-1]
    return ".".join(parts)


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_path_name(p): tuple(getattr(x, "shape", ())) for p, x in flat}


def check_compatible(saved, expected, where: str, prefix: str = "") -> None:
    """Raises ``ValueError`` naming the first key that is missing, unexpected or reshaped."""
    got, want = _shapes(saved), _shapes(expected)
    if prefix:
        got = {k: v for k, v in got.items() if k.startswith(prefix)}
        want = {k: v for k, v in want.items() if k.startswith(prefix)}

    # Report model parameters before optimizer slots: they say what actually differs.
    def order(k):
        return (0 if k.startswith("params") else 1 if k.startswith("rest") else 2, k)

    missing = sorted(set(want) - set(got), key=order)
    unexpected = sorted(set(got) - set(want), key=order)
    reshaped = sorted((k for k in set(want) & set(got) if want[k] != got[k]), key=order)
    if missing or unexpected or reshaped:
        lines = [f"{where}: checkpoint does not match this model (another architecture?)"]
        if missing:
            lines.append(f"  missing key {missing[0]!r} ({len(missing)} missing in all)")
        if unexpected:
            lines.append(f"  unexpected key {unexpected[0]!r} ({len(unexpected)} in all)")
        if reshaped:
            k = reshaped[0]
            lines.append(
                f"  key {k!r} has shape {got[k]} in the checkpoint, {want[k]} in the model "
                f"({len(reshaped)} differ in all)"
            )
        raise ValueError("\n".join(lines))


# ------------------------------------------------------------------------------ manager
def _item_handlers() -> dict:
    # Named up front so a fresh manager can read metadata of existing checkpoints.
    return {"state": ocp.StandardCheckpointHandler(), "data": IteratorStateHandler()}


class Checkpointer:
    """``CheckpointManager`` over ``directory`` with the train state and the iterator state."""

    def __init__(self, directory: str, *, keep: int, async_save: bool = True):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers=_item_handlers(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=int(keep), create=True, enable_async_checkpointing=async_save
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state, data_state: dict | None) -> None:
        items = {"state": ocp.args.StandardSave(to_saveable(state))}
        if data_state is not None:
            items["data"] = IteratorStateSave(data_state)
        self.manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def restore(self, step: int, abstract_state, *, with_data: bool = True):
        """``(state, data_state)`` at ``step``; ``abstract_state`` gives structure and shardings."""
        where = os.path.join(self.directory, str(step))
        target = _abstract_saveable(abstract_state)
        meta = self.manager.item_metadata(step)
        if meta is None or "state" not in meta or meta["state"] is None:
            raise ValueError(f"{where}: no 'state' item in this checkpoint")
        check_compatible(meta["state"], target, where)
        items = {"state": ocp.args.StandardRestore(target)}
        if with_data and "data" in meta.keys():
            items["data"] = IteratorStateRestore()
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        state = _from_saveable(restored["state"], abstract_state)
        data = restored["data"] if "data" in items else None
        return state, data

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def restore_params_from(directory: str, abstract_state):
    """Parameters and model state (``params``, ``rest``) of the latest checkpoint in another
    run's directory (``config.init_checkpoint``); the optimizer starts fresh."""
    mngr = ocp.CheckpointManager(os.path.abspath(directory), item_handlers=_item_handlers())
    step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"config.init_checkpoint={directory!r}: no checkpoint found there")
    where = os.path.join(os.path.abspath(directory), str(step))
    target = _abstract_saveable(abstract_state)
    meta = mngr.item_metadata(step)["state"]
    check_compatible(meta, target, where, prefix="params")
    check_compatible(meta, target, where, prefix="rest")
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))[
        "state"
    ]
    mngr.close()
    return _from_saveable(restored, abstract_state)


def all_finite_host(tree) -> bool:
    """Host-side finiteness of every floating leaf (the guard before a save)."""
    for x in jax.tree.leaves(jax.device_get(tree)):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            return False
    return True


# ------------------------------------------------------------------------------ inference
def checkpoint_dir(path: str) -> str:
    """``path`` may be a training workdir (holding ``checkpoints/``) or that folder itself."""
    path = os.path.abspath(path)
    inner = os.path.join(path, "checkpoints")
    return inner if os.path.isdir(inner) else path


def restore_model(config, path: str, step: int | None = None, body_model=None):
    """``(model in eval mode, step)`` from the checkpoints that training wrote in ``path`` (a
    workdir or its ``checkpoints/`` folder), at ``step`` or the latest. Used by evaluation and the
    demo. Errors name the folder (and the steps it has); a checkpoint of another architecture
    fails on the first mismatched key (``check_compatible``)."""
    from flax import nnx

    from siam_jax import models
    from siam_jax.training import state as state_lib
    from siam_jax.training import step as step_lib

    directory = checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no checkpoint directory (train into it first)")
    ckpt = Checkpointer(directory, keep=1_000_000, async_save=False)
    try:
        steps = ckpt.all_steps()
        if not steps:
            raise FileNotFoundError(f"{directory}: holds no checkpoint")
        if step is None:
            step = max(steps)
        elif int(step) not in steps:
            raise FileNotFoundError(f"{directory}: no checkpoint at step {step} (have {steps})")
        if body_model is None:
            body_model = models.load_body_model(config.model)
        tx = state_lib.make_optimizer(config)
        graph = {}

        def init():
            model = models.build_model(
                config.model, rngs=nnx.Rngs(int(config.seed)), body_model=body_model
            )
            graph["defs"], st = state_lib.create_train_state(model, tx)
            return st

        repl = step_lib.replicated(step_lib.make_mesh())
        abstract = jax.eval_shape(init)
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), abstract
        )
        state, _ = ckpt.restore(int(step), abstract, with_data=False)
    finally:
        ckpt.close()
    model = nnx.merge(graph["defs"].eval, state.params, state.rest)
    model.eval()
    return model, int(step)
