"""The input iterator's position in a checkpoint, written by Grain's own Orbax handler.

Grain's ``grain.checkpoint.CheckpointHandler`` writes one JSON file per process,
``process_{i}-of-{n}.json`` (``i, n = jax.process_index(), jax.process_count()``), and reads the
file of the restoring process back.

Why the handler gets a snapshot and not the live iterator: the handler calls the item's
``get_state()`` when Orbax runs it, so it would save wherever the iterator is at that moment. In
orbax-checkpoint 0.12 a non-async handler runs before ``CheckpointManager.save`` returns, which
today is the step's position, but nothing promises that an async manager keeps it so (and a
prefetching or advancing iterator must never race the save). So the trainer captures
``get_state()`` right after the step's ``next()`` and the checkpoint saves exactly that
(serialised here, at ``save`` time; later changes to the dict cannot reach the file). Grain's
handler treats any item that is not a ``grain.DatasetIterator`` as a ``DataLoaderIterator``
(``get_state() -> bytes`` of JSON; on restore ``set_state(bytes)`` then ``start_prefetch()``):
``_Snapshot`` and ``_Receiver`` speak that protocol, and restore hands the state back as a dict
for the caller's ``set_state``.

A checkpoint written by another number of processes has no file for this one: ``check_present``
says so (naming the files found) before Grain's bare "File ... does not exist".
"""

from __future__ import annotations

import json
import os
from typing import Any

import grain
import jax

ITEM = "data"


class _Snapshot:
    """What Grain's handler saves: an iterator state captured at its step (JSON, fixed now)."""

    def __init__(self, state: Any):
        self._json = json.dumps(state, indent=1)

    def get_state(self) -> bytes:
        return self._json.encode()


class _Receiver:
    """Where Grain's handler restores into: keeps the state for the caller."""

    def __init__(self):
        self.state: Any = None

    def set_state(self, state: bytes) -> None:
        self.state = json.loads(state.decode())

    def start_prefetch(self) -> None:  # called by Grain's handler after set_state
        pass


def handler() -> grain.checkpoint.CheckpointHandler:
    return grain.checkpoint.CheckpointHandler()


def save_args(state: Any) -> grain.checkpoint.CheckpointSave:
    """Orbax save args for a JSON-able iterator state (``it.get_state()`` at the step)."""
    return grain.checkpoint.CheckpointSave(_Snapshot(state))


def restore_args() -> grain.checkpoint.CheckpointRestore:
    return grain.checkpoint.CheckpointRestore(_Receiver())


def restored_state(item: Any) -> Any:
    """The state dict from what Orbax returned for the ``data`` item."""
    if not isinstance(item, _Receiver):
        raise TypeError(f"expected the data item restored by restore_args(), got {type(item)}")
    return item.state


def process_file_name() -> str:
    return f"process_{jax.process_index()}-of-{jax.process_count()}.json"


def check_present(item_dir: str) -> None:
    """Raises ``ValueError`` when ``item_dir`` has no state file for this process."""
    name = process_file_name()
    if os.path.exists(os.path.join(item_dir, name)):
        return
    found = sorted(f for f in os.listdir(item_dir) if f.endswith(".json"))
    raise ValueError(
        f"{os.path.join(item_dir, name)}: no data-iterator state for process "
        f"{jax.process_index()} of {jax.process_count()} (found {found}); was the checkpoint "
        "written with another number of processes?"
    )
