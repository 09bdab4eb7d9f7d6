"""The body model a config names: ``config.model.body_model`` -> ``BodyModel`` / ``RestRoot``.

``config.model.body_model`` holds ``path`` (an SMPL .pkl/.npz file or a folder of
``SMPL_<GENDER>.*`` files; "" = the procedural model), ``gender``, ``procedural_seed`` and
``h36m_regressor_path`` (configs/default.py). Every package that needs the configured body model
(the model, training, evaluation, the input pipeline) asks here, so they all get the same cached
object.
"""

from __future__ import annotations

import functools
import os

import jax

from siam_jax.body.io import GENDERS, load_body_model, load_h36m_regressor
from siam_jax.body.model import BodyModel
from siam_jax.body.procedural import make_procedural_body_model
from siam_jax.body.rest_root import RestRoot


@functools.lru_cache(maxsize=8)
def get_body_model(
    path: str = "", gender: str = "neutral", seed: int = 0, h36m_regressor_path: str = ""
) -> BodyModel:
    """The SMPL file at ``path`` or, when ``path`` is "", the procedural model (cached).

    Built eagerly even when first asked for inside a trace (``jax.eval_shape`` of a model that
    loads its own body, a jitted init): the cache must hold concrete arrays, never tracers.
    """
    with jax.ensure_compile_time_eval():
        return _build_body_model(path, gender, seed, h36m_regressor_path)


def _build_body_model(path: str, gender: str, seed: int, h36m_regressor_path: str) -> BodyModel:
    if path:
        return load_body_model(path, gender=gender, h36m_regressor_path=h36m_regressor_path)
    model = make_procedural_body_model(seed)
    if h36m_regressor_path:
        import jax.numpy as jnp

        reg = load_h36m_regressor(h36m_regressor_path, model.num_vertices)
        model = model.replace(h36m_regressor=jnp.asarray(reg, jnp.float32))
    return model


def body_model_from_config(body_model_config, *, gender: str | None = None) -> BodyModel:
    """The body model of ``config.model.body_model`` (``gender`` overrides the config's)."""
    bm = body_model_config
    return get_body_model(
        bm.path,
        gender=bm.gender if gender is None else gender,
        seed=bm.procedural_seed,
        h36m_regressor_path=bm.h36m_regressor_path,
    )


def rest_root_from_config(body_model_config) -> RestRoot:
    """J0 of the configured body model, per gender code (index into ``GENDERS``).

    A folder with gendered SMPL files gives each gender its own model; genders without a file
    (and every person, when ``path`` is a file or "") use the configured gender's model.
    """
    bm = body_model_config
    models = {}
    if bm.path and os.path.isdir(bm.path):
        for code, gender in enumerate(GENDERS):
            try:
                models[code] = body_model_from_config(bm, gender=gender)
            except FileNotFoundError:  # this gender has no file; a broken file still raises
                continue
    if not models:
        return RestRoot.from_body_model(body_model_from_config(bm))
    configured = GENDERS.index(bm.gender) if bm.gender in GENDERS else None
    return RestRoot(models, default=configured if configured in models else None)


__all__ = ["body_model_from_config", "get_body_model", "rest_root_from_config"]
