"""Training targets of one frame: person order, padding to k slots, centre cells and heatmap.

Conventions (documented in docs/data.md, "Input pipeline"):

* A person's centre is its projected pelvis (SMPL joint 0, smplx order) in input pixels: the 2D
  joint when annotated and visible, else the centre of its box.
* Feature cell of a centre (stride 8, the neck's output): cell c covers pixel edges [8c, 8c + 8),
  i.e. ``c = floor((u + 0.5) / 8)`` with pixel centres at integers (docs/architecture.md).
* Persons whose centre falls outside the input image are dropped (nothing to sample a token at).
* Persons are ordered nearest first (root depth; 2D-only persons get the pinhole depth of a
  1.7 m person from their box height); when two share a cell the nearer one keeps it, the other
  is dropped; then slots are truncated/padded to k with ``person_valid``.
* Heatmap: CenterNet Gaussians (Zhou et al. 2019; radius from the box as in CornerNet's
  ``gaussian_radius`` with min_overlap 0.7, sigma = (2r + 1) / 6 cells), at least
  ``sigma_min`` cells, peak exactly 1 at the centre cell, max over persons.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float, Int

from siam_jax.data import schema

FEATURE_STRIDE = 8  # DESIGN.md: the neck's feature map F is at 1/8 of the input
_PERSON_HEIGHT_M = 1.7  # depth guess for persons without 3D: a 1.7 m person

# Person fields that go into batches (schema.PERSON_FIELDS minus none: all are padded).
PERSON_KEYS = tuple(schema.PERSON_FIELDS)


def person_centres(persons: Mapping[str, np.ndarray]) -> Float[np.ndarray, "n 2"]:
    """Projected pelvis (joint 0) where annotated, else the box centre, in input pixels."""
    j2d = np.asarray(persons["joints_2d"], np.float64)
    box = np.asarray(persons["bbox"], np.float64)
    use_joint = np.asarray(persons["has_2d"], bool) | np.asarray(persons["has_3d"], bool)
    use_joint &= np.asarray(persons["visibility"])[:, 0] > 0
    box_centre = 0.5 * (box[:, :2] + box[:, 2:])
    return np.where(use_joint[:, None], j2d[:, 0], box_centre)


def person_depths(
    persons: Mapping[str, np.ndarray], intrinsics: Float[np.ndarray, "3 3"]
) -> Float[np.ndarray, " n"]:
    """Root depth (m) for persons with 3D; a pinhole guess from the box height otherwise."""
    has_3d = np.asarray(persons["has_3d"], bool) | np.asarray(persons["has_smpl"], bool)
    z = np.asarray(persons["joints_3d"], np.float64)[:, 0, 2]
    box = np.asarray(persons["bbox"], np.float64)
    height = np.maximum(box[:, 3] - box[:, 1], 1.0)
    guess = float(intrinsics[1, 1]) * _PERSON_HEIGHT_M / height
    return np.where(has_3d, z, guess)


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CornerNet/CenterNet radius: the largest corner shift keeping IoU >= min_overlap with a box
    of this size (smallest root of the three quadratic cases)."""
    h, w = float(height), float(width)
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def draw_gaussian(
    heatmap: Float[np.ndarray, "h w"], cell: Int[np.ndarray, " 2"], sigma: float
) -> None:
    """Max-accumulates exp(-d^2 / (2 sigma^2)) around ``cell`` (x, y) into ``heatmap``, in place."""
    h, w = heatmap.shape
    r = int(np.ceil(3 * sigma))
    x, y = int(cell[0]), int(cell[1])
    x0, x1 = max(0, x - r), min(w, x + r + 1)
    y0, y1 = max(0, y - r), min(h, y + r + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma**2)).astype(heatmap.dtype)
    np.maximum(heatmap[y0:y1, x0:x1], g, out=heatmap[y0:y1, x0:x1])


def _box_size_cells(persons: Mapping[str, np.ndarray], i: int) -> tuple[float, float]:
    box = np.asarray(persons["bbox"][i], np.float64)
    w, h = box[2] - box[0], box[3] - box[1]
    if w <= 0 or h <= 0:
        # No box: the extent of the visible 2D joints.
        vis = np.asarray(persons["visibility"][i]) > 0
        pts = np.asarray(persons["joints_2d"][i], np.float64)[vis]
        if len(pts) >= 2:
            w, h = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
        else:
            w = h = 0.0
    return h / FEATURE_STRIDE, w / FEATURE_STRIDE


def build_targets(
    persons: Mapping[str, np.ndarray],
    intrinsics: Float[np.ndarray, "3 3"],
    input_size: int,
    max_instances: int,
    sigma_min: float,
) -> dict[str, np.ndarray]:
    """Orders, filters and pads persons to k slots and draws the centre heatmap.

    Returns every ``schema.PERSON_FIELDS`` key as ``[k ...]`` (zeros in empty slots) plus
    ``center_cells [k 2] int32``, ``person_valid [k] bool`` and ``center_heatmap [h w] float32``.
    """
    if input_size % FEATURE_STRIDE:
        raise ValueError(f"input_size {input_size} is not a multiple of {FEATURE_STRIDE}")
    cells_n = input_size // FEATURE_STRIDE
    n = np.asarray(persons["betas"]).shape[0]
    annotated = (
        np.asarray(persons["has_2d"], bool)
        | np.asarray(persons["has_3d"], bool)
        | np.asarray(persons["has_smpl"], bool)
    )
    centres = person_centres(persons) if n else np.zeros((0, 2))
    cells = np.floor((centres + 0.5) / FEATURE_STRIDE).astype(np.int64)
    inside = np.all((cells >= 0) & (cells < cells_n), axis=-1) & np.all(np.isfinite(centres), -1)
    order = np.argsort(person_depths(persons, intrinsics), kind="stable") if n else []
    keep: list[int] = []
    taken: set[tuple[int, int]] = set()
    for i in order:
        if not (annotated[i] and inside[i]):
            continue
        key = (int(cells[i, 0]), int(cells[i, 1]))
        if key in taken:  # a nearer person already holds this cell
            continue
        taken.add(key)
        keep.append(int(i))
    keep = keep[:max_instances]
    out: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in schema.PERSON_FIELDS.items():
        arr = np.zeros((max_instances, *shape), dtype=dtype)
        if keep:
            arr[: len(keep)] = np.asarray(persons[name])[keep]
        out[name] = arr
    out["center_cells"] = np.zeros((max_instances, 2), np.int32)
    out["center_cells"][: len(keep)] = cells[keep] if keep else 0
    out["person_valid"] = np.zeros((max_instances,), bool)
    out["person_valid"][: len(keep)] = True
    heatmap = np.zeros((cells_n, cells_n), np.float32)
    for i in keep:
        h, w = _box_size_cells(persons, i)
        sigma = (2 * gaussian_radius(h, w) + 1) / 6 if h > 0 and w > 0 else 0.0
        draw_gaussian(heatmap, cells[i], max(sigma, float(sigma_min)))
    out["center_heatmap"] = heatmap
    return out
