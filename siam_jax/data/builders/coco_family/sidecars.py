"""Pseudo-SMPL side-cars: NeuralAnnot json (keyed by annotation id) and EFT json (a list).

NeuralAnnot (mks0601/NeuralAnnot_RELEASE MSCOCO|MPII|CrowdPose/demo_smpl.py; Hand4Whole
common/utils/preprocessing.py process_human_model_output): ``{str(ann_id): {'smpl_param': {'pose'
72 axis-angle, 'shape' 10, 'trans' 3}, 'cam_param': {'focal' [fx, fy], 'princpt' [cx, cy]}}}``;
the neutral SMPL with ``transl = trans`` posed in that perspective camera, in pixels of the full
image.

EFT (facebookresearch/eft docs/README_dataformat.md, demo/visEFTFit_coco.py): ``{'ver', 'data':
[{'parm_pose' 24x3x3 rotation matrices, 'parm_shape' 10, 'parm_cam' [s, tx, ty], 'bbox_scale',
'bbox_center' [x, y], 'imageName', 'annotId' (COCO only), ...}]}``. The fits were made with SPIN's
camera (eft/train/eftFitter.py): a 224-pixel crop of side ``200 bbox_scale`` around
``bbox_center``, focal 5000 in the crop, SMPL translation ``[tx, ty, 2 5000 / (224 s)]``; in pixels
of the image that is focal ``5000 x 200 bbox_scale / 224`` at principal point ``bbox_center``
(``eft_camera``). ROMP (romp/lib/dataset/coco14.py) assigns EFT fits to keypoint persons by
Hungarian matching of box centres per image; we match by ``annotId`` where the file has it
(COCO) and by centres otherwise (``match_by_centre``).
"""

from __future__ import annotations

import json
import math
import os

import jax.numpy as jnp
import numpy as np

from siam_jax.body import rotations
from siam_jax.data.builders.coco_family.fit_camera import Fit

SPIN_FOCAL = 5000.0  # SPIN constants.py FOCAL_LENGTH
SPIN_CROP = 224  # SPIN constants.py IMG_RES


def load_json(path: str) -> object:
    """A json file, with the file named when it is missing or unreadable."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing file {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not readable json: {err}") from err


def _vector(entry: dict, key: str, size: int, where: str) -> np.ndarray:
    if key not in entry:
        raise ValueError(f"{where}: missing key {key!r}")
    try:
        value = np.asarray(entry[key], np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {key!r} is not numeric: {err}") from err
    if value.size != size or not np.all(np.isfinite(value)):
        raise ValueError(f"{where}: {key!r} has {value.size} values (want {size}, finite)")
    return value


def read_neuralannot(path: str, ann_ids: set[int]) -> tuple[dict[int, Fit], int]:
    """``({ann_id: Fit}, null entries)`` of a NeuralAnnot SMPL json. Every key must be the id of
    an annotation of the dataset's json (``ann_ids``); entries that are ``null`` are counted."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a json object keyed by annotation id")
    fits, nulls = {}, 0
    for key, entry in data.items():
        where = f"{path}: entry {key!r}"
        try:
            ann_id = int(key)
        except ValueError:
            raise ValueError(f"{where}: key is not an annotation id") from None
        if ann_id not in ann_ids:
            raise ValueError(f"{where}: annotation id {ann_id} matches no annotation")
        if entry is None:
            nulls += 1
            continue
        for part in ("smpl_param", "cam_param"):
            if not isinstance(entry.get(part), dict):
                raise ValueError(f"{where}: missing object {part!r}")
        smpl, cam = entry["smpl_param"], entry["cam_param"]
        pose = _vector(smpl, "pose", 72, f"{where}.smpl_param")
        focal = _vector(cam, "focal", 2, f"{where}.cam_param")
        princpt = _vector(cam, "princpt", 2, f"{where}.cam_param")
        k = np.array([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]], [0, 0, 1.0]])
        fits[ann_id] = Fit(
            betas=_vector(smpl, "shape", 10, f"{where}.smpl_param"),
            global_orient=pose[:3],
            body_pose=pose[3:].reshape(23, 3),
            transl=_vector(smpl, "trans", 3, f"{where}.smpl_param"),
            k=k,
            source="neuralannot",
            key=where,
        )
    return fits, nulls


def eft_camera(
    cam: np.ndarray, bbox_scale: float, bbox_center: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SPIN's weak-perspective crop camera ``[s, tx, ty]`` -> (image intrinsics, SMPL transl)."""
    s, tx, ty = (float(x) for x in cam)
    if s <= 0:
        raise ValueError(f"EFT camera scale {s} is not positive")
    focal = SPIN_FOCAL * 200.0 * float(bbox_scale) / SPIN_CROP
    cx, cy = (float(x) for x in bbox_center)
    k = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1.0]])
    return k, np.array([tx, ty, 2.0 * SPIN_FOCAL / (SPIN_CROP * s)])


def read_eft(path: str) -> list[tuple[dict, Fit]]:
    """``[(meta, Fit)]`` of an EFT json; ``meta`` has 'image' (basename), 'centre' [2] and
    'ann_id' (int or None)."""
    data = load_json(path)
    if not isinstance(data, dict) or "data" not in data:
        raise ValueError(f"{path}: missing key 'data' (EFT files are {{'ver', 'data': [...]}})")
    if not isinstance(data["data"], list):
        raise ValueError(f"{path}: 'data' is not a list")
    out = []
    for i, entry in enumerate(data["data"]):
        where = f"{path}: data[{i}]"
        if not isinstance(entry, dict) or "imageName" not in entry:
            raise ValueError(f"{where}: missing key 'imageName'")
        rot = _vector(entry, "parm_pose", 24 * 9, where).reshape(24, 3, 3)
        pose = np.asarray(rotations.matrix_to_axis_angle(jnp.asarray(rot)), np.float64)
        centre = _vector(entry, "bbox_center", 2, where)
        scale = _vector(entry, "bbox_scale", 1, where)[0]
        try:
            k, transl = eft_camera(_vector(entry, "parm_cam", 3, where), scale, centre)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        ann = entry.get("annotId")
        meta = {
            "image": os.path.basename(str(entry["imageName"])),
            "centre": centre,
            "ann_id": None if ann is None else int(ann),
        }
        fit = Fit(
            betas=_vector(entry, "parm_shape", 10, where),
            global_orient=pose[0],
            body_pose=pose[1:],
            transl=transl,
            k=k,
            source="eft",
            key=where,
        )
        out.append((meta, fit))
    return out


def match_by_centre(
    fit_centres: np.ndarray, person_boxes: np.ndarray, max_distance: float = 0.5
) -> list[tuple[int, int]]:
    """``[(person, fit)]`` from Hungarian matching of fit centres to person box centres (ROMP
    coco14.py uses lap.lapjv on centre distances). A pair is kept only when its distance is at
    most ``max_distance`` x the person box diagonal (ROMP keeps every pair; a far pair gives one
    person another's pose)."""
    from scipy.optimize import linear_sum_assignment

    fits = np.asarray(fit_centres, np.float64).reshape(-1, 2)
    boxes = np.asarray(person_boxes, np.float64).reshape(-1, 4)
    if len(fits) == 0 or len(boxes) == 0:
        return []
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    cost = np.linalg.norm(centres[:, None] - fits[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    diag = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=-1)
    return [
        (int(r), int(c))
        for r, c in zip(rows, cols, strict=True)
        if cost[r, c] <= max_distance * max(diag[r], 1.0) and math.isfinite(cost[r, c])
    ]
