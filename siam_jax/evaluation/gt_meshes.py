"""Ground-truth meshes from the SMPL parameters of the records, with a body model per gender."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from siam_jax.body import get_body_model


@jax.jit
def _body_forward(model, betas, pose, orient, transl):
    return model(betas=betas, body_pose=pose, global_orient=orient, transl=transl)


class GtMeshes:
    """GT vertices/joints from SMPL parameters (camera frame) with a body model per gender."""

    def __init__(self, models: Mapping[str, Any]):
        self.models = dict(models)

    def __call__(self, persons: Mapping[str, np.ndarray], idx, gender: str = "neutral"):
        """(vertices [n v 3], joints [n 24 3]) of persons ``idx`` with the ``gender`` model."""
        if gender not in self.models:
            raise ValueError(f"no {gender} body model loaded (have {sorted(self.models)})")
        idx = np.asarray(idx, np.int64)
        n = len(idx)
        pad = max(8, -(-n // 8) * 8)  # a few static shapes: one compile per bucket of 8

        def take(name, shape):
            out = np.zeros((pad, *shape), np.float32)
            out[:n] = np.asarray(persons[name], np.float32)[idx]
            return out

        model = self.models[gender]
        betas = take("betas", (10,))[:, : model.num_betas]
        out = _body_forward(
            model,
            betas,
            take("body_pose", (23, 3)),
            take("global_orient", (3,)),
            take("transl", (3,)),
        )
        return np.asarray(out.vertices)[:n], np.asarray(out.joints)[:n, :24]


def body_models_for(config, protocol: str, dataset: str, body_model) -> dict[str, Any]:
    """The GT body models: the model's own (neutral) and, for the SPIN protocol on 3DPW, the
    gendered SMPL files of ``config.data.real.body_model_dir`` (default
    ``<manual_dir>/body_models``) when present (else the error names the folder)."""
    models = {"neutral": body_model}
    if not (dataset.startswith("pw3d") and protocol == "spin"):
        return models
    folder = config.data.real.body_model_dir or os.path.join(config.data.manual_dir, "body_models")
    for g in ("male", "female"):
        try:
            m = get_body_model(folder, gender=g)
        except (FileNotFoundError, ValueError) as e:
            raise FileNotFoundError(
                f"the spin protocol needs gendered SMPL models in {folder!r} "
                f"(config.data.real.body_model_dir): {e}"
            ) from e
        if body_model.h36m_regressor is not None and m.h36m_regressor is None:
            m = m.replace(h36m_regressor=body_model.h36m_regressor)
        models[g] = m
    return models
