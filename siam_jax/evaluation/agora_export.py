"""Write predictions in the official AGORA per-person pickle format for the test server.

Format (agora_evaluation docs/prediction_format.md, check_pred_format.py, sample_pred_format/;
PROTOCOLS.md section 1.2): one pickle per predicted person named
``<image stem>_personId_<k>.pkl`` holding numpy arrays only:

* ``joints``: 2D joints [J, 2] in **3840x2160** pixels (used for matching; smplx SMPL order);
  predictions made on 1280x720 images are scaled by 2160 / 720 = 3;
* ``verts`` [6890, 3] and ``allSmplJoints3d`` [J, 3], metres, camera frame, when given;
* ``params`` {``global_orient`` (1,1,3) | (1,1,3,3), ``body_pose`` (1,23,3) | (1,23,3,3),
  ``betas`` (1,10), ``transl`` (1,3)} with ``pose2rot`` True for axis-angle and False for
  rotation matrices, plus ``num_betas``, ``gender`` 'neutral' and ``age`` 'adult' (as the sample
  ``smpl_param_rm_personId_0.pkl``); a kid's ``betas`` are (1,11) with ``num_betas`` 11, ``age``
  'kid' and ``kid_flag`` True (PROTOCOLS.md 1.2, 1.7).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from siam_jax.common import files

AGORA_WIDTH, AGORA_HEIGHT = 3840, 2160


def _scale_to_4k(joints_2d: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    w, h = image_size
    sx, sy = AGORA_WIDTH / w, AGORA_HEIGHT / h
    if not np.isclose(sx, sy):
        raise ValueError(
            f"joints_2d image size {w}x{h} does not have AGORA's 16:9 aspect ratio (3840x2160)"
        )
    return np.asarray(joints_2d, np.float64) * sx


def _params_entry(params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
    missing = [k for k in ("global_orient", "body_pose", "betas", "transl") if k not in params]
    if missing:
        raise KeyError(f"params lacks {missing}")
    go = np.asarray(params["global_orient"], np.float32)
    bp = np.asarray(params["body_pose"], np.float32)
    # Rotation matrices iff the trailing shape is 3x3 (the model's own output layout).
    rotmat = bp.shape[-2:] == (3, 3)
    if rotmat:
        go, bp = go.reshape(1, 1, 3, 3), bp.reshape(1, 23, 3, 3)
    else:
        go, bp = go.reshape(1, 1, 3), bp.reshape(1, 23, 3)
    betas = np.asarray(params["betas"], np.float32).reshape(1, -1)
    if betas.shape[1] not in (10, 11):
        raise ValueError(
            f"betas must have 10 entries (adult SMPL) or 11 (kid: SMIL blend), got {betas.shape[1]}"
        )
    entry = {
        "global_orient": go,
        "body_pose": bp,
        "betas": betas,
        "transl": np.asarray(params["transl"], np.float64).reshape(1, 3),
    }
    return entry, not rotmat


def person_record(person: Mapping[str, Any]) -> dict[str, Any]:
    """One prediction dict in the official format from our per-person fields.

    ``person`` keys: ``joints_2d`` [J>=24, 2] (required), ``image_size`` (w, h) of those pixels
    (default 3840x2160; 1280x720 is scaled by 3), and optionally ``vertices`` [6890, 3],
    ``joints_3d`` [J, 3] (written as ``allSmplJoints3d``) and ``params`` (axis-angle or rotmat).
    """
    if "joints_2d" not in person:
        raise KeyError("person lacks 'joints_2d' (needed by AGORA's matching)")
    j2d = np.asarray(person["joints_2d"], np.float64)
    if j2d.ndim != 2 or j2d.shape[0] < 24 or j2d.shape[1] != 2:
        raise ValueError(f"joints_2d must be [J>=24, 2], got {j2d.shape}")
    size = tuple(person.get("image_size", (AGORA_WIDTH, AGORA_HEIGHT)))
    rec: dict[str, Any] = {"joints": _scale_to_4k(j2d, size)}
    has_mesh = "vertices" in person and "joints_3d" in person
    if "vertices" in person:
        v = np.asarray(person["vertices"], np.float32)
        if v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got {v.shape}")
        rec["verts"] = v
    if "joints_3d" in person:
        j3 = np.asarray(person["joints_3d"], np.float32)
        if j3.ndim != 2 or j3.shape[0] < 24 or j3.shape[1] != 3:
            raise ValueError(f"joints_3d must be [J>=24, 3], got {j3.shape}")
        rec["allSmplJoints3d"] = j3
    if "params" in person:
        params, pose2rot = _params_entry(person["params"])
        nb = int(params["betas"].shape[1])
        # A kid keeps its 11 betas: num_betas 11, age 'kid', kid_flag (the official format and
        # BEV's eval_AGORA.py), so the evaluator poses it with the SMIL kid template.
        rec.update(params=params, pose2rot=pose2rot, num_betas=nb, gender="neutral")
        if nb == 11:
            rec.update(age="kid", kid_flag=True)
        else:
            rec["age"] = "adult"
    elif not has_mesh:
        raise KeyError("person needs 'params' or both 'vertices' and 'joints_3d'")
    return rec


def write_agora_predictions(
    out_dir: str, image_name: str, persons: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Write ``<stem>_personId_<k>.pkl`` for each person of one image; returns the paths.

    ``image_name`` may carry an extension (``x.png``) or not. Each file is written atomically
    (``siam_jax.common.files.atomic_path``): whole or absent.
    """
    stem = os.path.splitext(os.path.basename(image_name))[0]
    if not stem:
        raise ValueError(f"empty image name {image_name!r}")
    paths = []
    for k, person in enumerate(persons):
        rec = person_record(person)
        path = os.path.join(out_dir, f"{stem}_personId_{k}.pkl")
        # ".partial": a crashed write never matches the official loader's "*.pkl" glob.
        with files.atomic_path(path, suffix=".partial") as tmp, open(tmp, "wb") as f:
            pickle.dump(rec, f, protocol=4)
        paths.append(path)
    return paths
