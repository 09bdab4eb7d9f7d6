"""Which body model a run used: a digest of its arrays and a description for reports and
checkpoints (``checkpoints.META_BODY_MODEL``).

The digest is SHA-256 over the arrays that shape a mesh (template, blend shapes, regressor,
skinning weights, faces, kinematic tree, and the H36M regressor when present), in that order,
each as little-endian float32/int32 bytes with its shape: two models give the same digest
exactly when they pose every input to the same mesh and joints.
"""

from __future__ import annotations

import hashlib

import numpy as np

from siam_jax.body.model import BodyModel

_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "faces")


def body_model_digest(model: BodyModel) -> str:
    """Hex SHA-256 of the model's arrays (16 hex digits are enough to name it in messages)."""
    h = hashlib.sha256()
    arrays = [getattr(model, f) for f in _FIELDS] + [np.asarray(model.parents, np.int32)]
    if model.h36m_regressor is not None:
        arrays.append(model.h36m_regressor)
    for a in arrays:
        a = np.asarray(a)
        a = a.astype("<i4" if a.dtype.kind in "iu" else "<f4")
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def describe_body_model(body_model_config, model: BodyModel) -> dict:
    """``{"kind": "smpl"|"procedural", "path", "gender", "digest"}`` of ``config.model.body_model``
    and the model built from it: what a report or a checkpoint records."""
    path = str(body_model_config.path or "")
    return {
        "kind": "smpl" if path else "procedural",
        "path": path or None,
        "gender": str(body_model_config.gender),
        "digest": body_model_digest(model),
    }


__all__ = ["body_model_digest", "describe_body_model"]
