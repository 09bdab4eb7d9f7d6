"""AGORA: the official evaluator (``evaluation.agora.evaluate_agora``) on the official GT
DataFrames (``SMPL/<split>_*_withjv.pkl``: their ``gt_joints_2d`` (45 joints, 3840x2160, the box
gate of the matcher), ``gt_joints_3d`` and ``gt_verts``, kids included, PROTOCOLS.md 1.3) and
per-person predictions in the official format (``agora_export.person_record``), optionally
exported for the test server.

The GT is never re-posed from the records' SMPL parameters: kids (SMIL, 11 betas) and adults
without a usable fit have none, and the official numbers are defined on ``gt_verts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siam_jax.evaluation import agora as agora_lib
from siam_jax.evaluation import agora_export
from siam_jax.evaluation.frames import Frame
from siam_jax.evaluation.predictions import Prediction


def _persons(frame: Frame, pred: Prediction) -> list[dict[str, Any]]:
    """``agora_export.person_record`` inputs of each predicted person."""
    return [
        {
            "joints_2d": pred.joints_2d[q],
            "image_size": (frame.width, frame.height),
            "vertices": pred.vertices[q],
            "joints_3d": pred.joints_3d[q],
            "params": {
                "global_orient": pred.global_orient[q],
                "body_pose": pred.body_pose[q],
                "betas": pred.betas[q],
                "transl": pred.transl[q],
            },
        }
        for q in range(len(pred.joints_2d))
    ]


def select_rows(gt_frames: Sequence, images: Sequence[str], where: str):
    """``(rows of gt_frames whose image is in images, {image: the row's imgPath key})``;
    names compare without the ``_1280x720`` suffix of the 720p release. An evaluated image with
    no GT row is an error naming it."""
    import pandas as pd

    df = pd.concat(list(gt_frames), ignore_index=True)
    keys = [agora_lib.image_key(p) for p in df["imgPath"]]
    by_name = {agora_lib.official_image_name(k): k for k in keys}
    wanted = {agora_lib.official_image_name(i) for i in images}
    missing = sorted(wanted - set(by_name))
    if missing:
        raise KeyError(
            f"{where}: no GT row for {len(missing)} evaluated images, e.g. {missing[:3]}"
        )
    rows = df[[agora_lib.official_image_name(k) in wanted for k in keys]].reset_index(drop=True)
    return rows, {i: by_name[agora_lib.official_image_name(i)] for i in images}


class AgoraEval:
    protocol = "agora_official"

    def __init__(
        self,
        gt_frames: Sequence,
        export_dir: str | None = None,
        body_verts_index: np.ndarray | None = None,
        gt_source: str = "AGORA GT",
    ):
        self.gt_frames = list(gt_frames)
        self.gt_source = gt_source
        self.export_dir = export_dir
        self.body_verts_index = body_verts_index
        self.images: list[str] = []
        self.predictions: dict[str, list[dict]] = {}
        self.num_exported = 0

    def add(self, frame: Frame, pred: Prediction) -> None:
        self.images.append(frame.image_name)
        persons = _persons(frame, pred)
        if not persons:
            return
        self.predictions[frame.image_name] = [agora_export.person_record(x) for x in persons]
        if self.export_dir:
            agora_export.write_agora_predictions(self.export_dir, frame.image_name, persons)
            self.num_exported += len(persons)

    def result(self) -> dict[str, Any]:
        df, gt_key = select_rows(self.gt_frames, self.images, self.gt_source)
        preds = {gt_key[k]: v for k, v in self.predictions.items()}
        out = agora_lib.evaluate_agora([df], preds, self.body_verts_index)
        out["num_persons"] = out["num_gt"]
        if self.export_dir:
            out["exported_predictions"] = self.num_exported
        return out
