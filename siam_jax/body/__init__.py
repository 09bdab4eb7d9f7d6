"""SMPL in pure JAX: loading, LBS, rotations, joint sets, the procedural model (docs/body.md)."""

from __future__ import annotations

import functools

from siam_jax.body import joint_sets, lbs, rotations
from siam_jax.body.io import load_body_model, load_h36m_regressor, save_body_model
from siam_jax.body.model import BodyModel, BodyOutput
from siam_jax.body.procedural import make_procedural_body_model


@functools.lru_cache(maxsize=8)
def get_body_model(
    path: str = "", gender: str = "neutral", seed: int = 0, h36m_regressor_path: str = ""
) -> BodyModel:
    """The configured body model (cached): the SMPL file at `path`, or the procedural model.

    config.model.body_model.{path, gender, procedural_seed, h36m_regressor_path}.
    """
    if path:
        return load_body_model(path, gender=gender, h36m_regressor_path=h36m_regressor_path)
    model = make_procedural_body_model(seed)
    if h36m_regressor_path:
        import jax.numpy as jnp

        reg = load_h36m_regressor(h36m_regressor_path, model.num_vertices)
        model = model.replace(h36m_regressor=jnp.asarray(reg, jnp.float32))
    return model


__all__ = [
    "BodyModel",
    "BodyOutput",
    "get_body_model",
    "joint_sets",
    "lbs",
    "load_body_model",
    "load_h36m_regressor",
    "make_procedural_body_model",
    "rotations",
    "save_body_model",
]  # fmt: skip
