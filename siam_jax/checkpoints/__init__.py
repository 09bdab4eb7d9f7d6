"""Checkpoints: the Orbax manager of training states and iterator positions (``manager``), and
a trained model restored for evaluation and the demo (``restore``). Below training, evaluation
and inference, so none of them reaches into another (docs/architecture.md)."""

from siam_jax.checkpoints.compat import check_compatible
from siam_jax.checkpoints.keys import is_key
from siam_jax.checkpoints.manager import (
    META_BODY_MODEL,
    META_CENTER_THRESHOLD,
    META_TRAIN_DATASETS,
    Checkpointer,
    ModelState,
    check_body_model,
    restore_params_from,
)
from siam_jax.checkpoints.restore import body_state, checkpoint_dir, restore_model

__all__ = [
    "META_BODY_MODEL",
    "META_CENTER_THRESHOLD",
    "META_TRAIN_DATASETS",
    "Checkpointer",
    "ModelState",
    "body_state",
    "check_body_model",
    "check_compatible",
    "checkpoint_dir",
    "is_key",
    "restore_model",
    "restore_params_from",
]
