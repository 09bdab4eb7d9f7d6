"""SMPL in pure JAX: loading, LBS, rotations, joint sets, the procedural model (docs/body.md)."""

from __future__ import annotations

from siam_jax.body import joint_sets, lbs, rotations
from siam_jax.body.configured import body_model_from_config, get_body_model, rest_root_from_config
from siam_jax.body.identity import body_model_digest, describe_body_model
from siam_jax.body.io import GENDERS, load_body_model, load_h36m_regressor, save_body_model
from siam_jax.body.model import BodyModel, BodyOutput
from siam_jax.body.procedural import make_procedural_body_model
from siam_jax.body.rest_root import RestRoot

__all__ = [
    "GENDERS",
    "BodyModel",
    "BodyOutput",
    "RestRoot",
    "body_model_digest",
    "body_model_from_config",
    "describe_body_model",
    "get_body_model",
    "joint_sets",
    "lbs",
    "load_body_model",
    "load_h36m_regressor",
    "make_procedural_body_model",
    "rest_root_from_config",
    "rotations",
    "save_body_model",
]  # fmt: skip
