"""The per-frame prediction file: one ``.npz`` per frame, readable with ``allow_pickle=False``.

Written by the demo (``demo.py``, one file per input frame) and read by ``eval.py --predictions``
(3DPW, CMU-Panoptic), so that predictions of any method can be scored with the same code.
docs/prediction_format.md describes every key; this module is the one place that checks them.

Names follow smplx (``global_orient``, ``body_pose`` in axis-angle, ``betas``, ``transl``), as the
smplx ``SMPL.forward`` keywords do; units are metres and radians; the frame is the camera frame of
the image (x right, y down, z forward: OpenCV, as ``intrinsics`` projects it). ``N`` is the number
of people in the frame (0 is allowed: a frame where nobody was found).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from siam_jax.common.files import atomic_path

SCHEMA_VERSION = 1

# key -> (shape with "N" for the people of the frame and "J" for the joint count, dtype kind).
# dtype kind: "f" float, "i" integer, "U" string.
PERSON_KEYS: dict[str, tuple[tuple, str]] = {
    "global_orient": (("N", 3), "f"),  # axis-angle, radians, camera frame
    "body_pose": (("N", 69), "f"),  # 23 joints x axis-angle, SMPL joint order
    "betas": (("N", None), "f"),  # 10 (adults) or 11 (AGORA kids: the 11th is the kid blend)
    "transl": (("N", 3), "f"),  # metres, camera frame (smplx ``transl``)
    "track_id": (("N",), "i"),  # -1 where there is no tracker (single images)
    "score": (("N",), "f"),  # centre-heatmap score in [0, 1]
    "joints_3d": (("N", "J", 3), "f"),  # metres, camera frame, set named by ``joint_set``
    "joints_2d": (("N", "J", 2), "f"),  # pixels of the original image, projection of joints_3d
}
FRAME_KEYS: dict[str, tuple[tuple, str]] = {
    "schema_version": ((), "i"),
    "joint_set": ((), "U"),  # e.g. "smpl24" (siam_jax.body.joint_sets)
    "intrinsics": ((3, 3), "f"),  # K of the original image, pixels
    "image_size": ((2,), "i"),  # (height, width) of the original image, pixels
}
OPTIONAL_KEYS: dict[str, tuple[tuple, str]] = {
    "vertices": (("N", 6890, 3), "f"),  # metres, camera frame (``--save_vertices``)
    "frame_index": ((), "i"),  # index of the frame in its video
    "image_name": ((), "U"),  # the input file or video frame it came from
}
ALL_KEYS = {**PERSON_KEYS, **FRAME_KEYS, **OPTIONAL_KEYS}


class PredictionFileError(ValueError):
    """A prediction file that does not follow the schema; the message names file and key."""


def _check(path: str, arrays: dict[str, np.ndarray]) -> None:
    missing = [k for k in (*PERSON_KEYS, *FRAME_KEYS) if k not in arrays]
    if missing:
        raise PredictionFileError(f"{path}: missing keys {missing} (docs/prediction_format.md)")
    unknown = sorted(set(arrays) - set(ALL_KEYS))
    if unknown:
        raise PredictionFileError(f"{path}: unknown keys {unknown} (docs/prediction_format.md)")
    version = int(arrays["schema_version"])
    if version != SCHEMA_VERSION:
        raise PredictionFileError(
            f"{path}: schema_version {version}, this reader knows {SCHEMA_VERSION}"
        )
    n = np.shape(arrays["score"])[0] if np.ndim(arrays["score"]) == 1 else None
    joints = np.shape(arrays["joints_3d"])[1] if np.ndim(arrays["joints_3d"]) == 3 else None
    for key, value in arrays.items():
        shape, kind = ALL_KEYS[key]
        a = np.asarray(value)
        if a.dtype.kind not in (kind, "u" if kind == "i" else kind):
            raise PredictionFileError(f"{path}: {key} has dtype {a.dtype}, expected kind {kind!r}")
        want = tuple({"N": n, "J": joints}.get(d, d) if isinstance(d, str) else d for d in shape)
        if a.ndim != len(want) or any(
            w is not None and s != w for s, w in zip(a.shape, want, strict=True)
        ):
            raise PredictionFileError(f"{path}: {key} has shape {a.shape}, expected {shape}")
        if kind == "f" and not np.all(np.isfinite(a)):
            raise PredictionFileError(f"{path}: {key} holds non-finite values")
    if arrays["betas"].shape[1] not in (10, 11):
        cols = arrays["betas"].shape[1]
        raise PredictionFileError(f"{path}: betas has {cols} columns, not 10 or 11")


def write(path: str | os.PathLike, **arrays: Any) -> None:
    """Checks ``arrays`` against the schema and writes them atomically (temp file, rename).
    ``schema_version`` is filled in when absent."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    arrays.setdefault("schema_version", np.asarray(SCHEMA_VERSION, np.int32))
    _check(os.fspath(path), arrays)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of one prediction file, checked against the schema (no pickle)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise PredictionFileError(f"{path}: not a readable npz ({e})") from e
    _check(path, arrays)
    return arrays
