"""The rest-pose root joint J0(betas): the pivot SMPL's ``global_orient`` rotates about.

smplx/lbs.py: ``lbs`` regresses the rest joints from the shaped template,
``J = J_regressor @ (v_template + shapedirs @ betas)`` (blend_shapes, vertices2joints), and
``batch_rigid_transform`` keeps J0 fixed while rotating the body by ``global_orient``. So moving a
posed body by a rigid map ``X -> A X + b`` changes ``transl`` to ``A (J0 + t) + b - J0``
(DESIGN.md, Conventions). Only row 0 of the regressor is needed: J0 is affine in the betas,
``J0 = a + B betas`` with ``a = J_regressor[0] @ v_template`` [3] and
``B = J_regressor[0] @ shapedirs`` [3 nb], precomputed here in float64 numpy so that host code
(the input pipeline, the dataset builders) gets J0 with one tiny matmul per person.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float, Int

from siam_jax.body.model import BodyModel


class RestRoot:
    """J0(betas), per gender code: ``RestRoot({code: body_model})(betas, gender)``.

    Gender codes index ``siam_jax.body.GENDERS`` (the schema's codes). A person whose gender has
    no model of its own uses the ``default`` code's model (default: code 0 when given, else the
    first).
    """

    def __init__(self, models: Mapping[int, BodyModel], *, default: int | None = None):
        if not models:
            raise ValueError("RestRoot needs at least one body model")
        self._a: dict[int, np.ndarray] = {}
        self._b: dict[int, np.ndarray] = {}
        for gender, model in models.items():
            jreg0 = np.asarray(model.J_regressor, np.float64)[0]  # [v]
            self._a[int(gender)] = jreg0 @ np.asarray(model.v_template, np.float64)
            shapedirs = np.asarray(model.shapedirs, np.float64)  # [v 3 nb]
            self._b[int(gender)] = np.einsum("v,vcl->cl", jreg0, shapedirs)
        if default is None:
            default = 0 if 0 in self._a else next(iter(self._a))
        if default not in self._a:
            raise ValueError(f"default gender code {default} has no model (have {sorted(self._a)})")
        self._default = int(default)

    @classmethod
    def from_body_model(cls, model: BodyModel) -> RestRoot:
        """One model for every person."""
        return cls({0: model})

    def __call__(
        self, betas: Float[np.ndarray, "*b nb"], gender: Int[np.ndarray, "*b"] | None = None
    ) -> Float[np.ndarray, "*b 3"]:
        """J0 in metres (float64), for any leading shape; betas beyond the model's are ignored,
        missing ones count as zero."""
        betas = np.asarray(betas, np.float64)
        lead = betas.shape[:-1]
        flat = betas.reshape(-1, betas.shape[-1])
        if gender is None:
            codes = np.zeros(len(flat), np.int64)
        else:
            codes = np.asarray(gender, np.int64)
            if codes.shape != lead:
                raise ValueError(f"gender has shape {codes.shape}, betas {betas.shape}")
            codes = codes.reshape(-1)
        out = np.empty((len(flat), 3))
        for code in np.unique(codes):
            sel = codes == code
            key = int(code) if int(code) in self._a else self._default
            b = self._b[key]
            nb = min(b.shape[1], flat.shape[1])
            out[sel] = self._a[key] + flat[sel, :nb] @ b[:, :nb].T
        return out.reshape(*lead, 3)


__all__ = ["RestRoot"]
