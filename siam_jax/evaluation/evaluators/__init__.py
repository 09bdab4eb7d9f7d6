"""One evaluator per benchmark: ``add(frame, prediction)`` per frame, then ``result()``.

An evaluator takes a ``frames.Frame`` (the GT record) and a ``predictions.Prediction`` (the valid
people predicted in it, whatever produced them: the network here, a predictions file later),
matches them as its benchmark does and scores them with the protocol modules
(``evaluation.pw3d``, ``agora``, ``panoptic``). ``protocol`` names what it computes in reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from siam_jax.evaluation.datasets import check_dataset
from siam_jax.evaluation.evaluators.agora import AgoraEval
from siam_jax.evaluation.evaluators.cmu_panoptic import PanopticEval
from siam_jax.evaluation.evaluators.pw3d import Pw3dEval
from siam_jax.evaluation.evaluators.siam_synthetic import SyntheticEval
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.gt_meshes import GtMeshes, body_models_for
from siam_jax.evaluation.predictions import Prediction


class Evaluator(Protocol):
    protocol: str

    def add(self, frame: Frame, pred: Prediction) -> None: ...

    def result(self) -> dict[str, Any]: ...


def make_evaluator(
    dataset: str,
    config,
    body_model,
    protocol: str,
    export_dir: str | None = None,
    verts_index: np.ndarray | None = None,
    agora_gt: Sequence | None = None,
) -> Evaluator:
    """The evaluator of ``dataset`` (``datasets.DATASETS``); ``protocol`` is 3DPW's, the AGORA
    options (``export_dir``, ``verts_index``, ``agora_gt``: the official GT DataFrames) AGORA's."""
    check_dataset(dataset)
    neutral = GtMeshes({"neutral": body_model})
    if dataset.startswith("pw3d"):
        gt = GtMeshes(body_models_for(config, protocol, dataset, body_model))
        return Pw3dEval(body_model, gt, protocol, video=int(config.model.clip_len) > 1)
    if dataset == "agora":
        if agora_gt is None:
            raise ValueError("AGORA is scored on the official GT DataFrames: pass agora_gt")
        return AgoraEval(agora_gt, export_dir, verts_index)
    if dataset == "cmu_panoptic":
        return PanopticEval(body_model)
    return SyntheticEval(neutral)


__all__ = ["AgoraEval", "Evaluator", "PanopticEval", "Pw3dEval", "SyntheticEval", "make_evaluator"]
