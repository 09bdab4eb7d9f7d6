"""Training targets of one frame: person order, padding to k slots, centre cells and heatmap.

Conventions (documented in docs/data.md, "Input pipeline"):

* A person's centre is its projected pelvis (SMPL joint 0, smplx order) in input pixels: the 2D
  joint when annotated and visible, else the centre of its box.
* Feature cell of a centre (stride 8, the neck's output): the cell whose receptive-field centre
  ``8c + CELL_CENTRE_OFFSET`` (siam_jax.models.tokens, derived from the conv stack) is nearest,
  ``c = floor((u - offset) / 8 + 0.5)`` clipped into the map, with pixel centres at integers
  (docs/architecture.md). The model reads a token's pixel with the same offset.
* Persons whose centre falls outside the input image (pixel edges [-0.5, S - 0.5)) are dropped
  (nothing to sample a token at).
* Persons are ordered nearest first (root depth; 2D-only persons get the pinhole depth of a
  1.7 m person from their box height); when two share a cell the nearer one keeps it, the other
  is dropped; then slots are truncated/padded to k with ``person_valid``.
* Heatmap: CenterNet Gaussians (Zhou et al. 2019; radius from the box as in CornerNet's
  ``gaussian_radius`` with min_overlap 0.7, sigma = (2r + 1) / 6 cells), at least
  ``sigma_min`` cells, peak exactly 1 at the centre cell, max over persons.
* Don't care (``center_ignore``, issue 20): a real person inside the image who is not a target
  (stored without any annotation flag, e.g. a 3DPW actor with campose_valid 0; dropped by the
  shared-cell rule; beyond the k slots) must not be trained as background. Its Gaussian window
  (the cells ``draw_gaussian`` would write, radius ceil(3 sigma)) is don't-care wherever its
  Gaussian exceeds the target heatmap; so are the cells whose centre lies in an
  ``ignore_boxes`` region (COCO crowds, ...; the cell of a box's centre at least). The focal
  loss drops negatives there, and everywhere in frames without ``all_persons_annotated``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float, Int

from siam_jax.data import schema
from siam_jax.models.tokens import CELL_CENTRE_OFFSET, FEATURE_STRIDE

_PERSON_HEIGHT_M = 1.7  # depth guess for persons without 3D: a 1.7 m person

# Person fields that go into batches: every stored field (schema.STORED_PERSON_FIELDS), padded.
PERSON_KEYS = tuple(schema.STORED_PERSON_FIELDS)
# The flags that make a stored person a target (any one of them).
_TARGET_FLAGS = ("has_2d", "has_3d", "has_smpl", "has_keypoints_2d", "has_keypoints_3d")


def cell_of_pixel(points: Float[np.ndarray, "*n 2"], cells_n: int) -> Int[np.ndarray, "*n 2"]:
    """The cell (x, y) whose receptive-field centre is nearest each pixel point, clipped into a
    ``cells_n`` square map (module doc)."""
    c = np.floor((np.asarray(points, np.float64) - CELL_CENTRE_OFFSET) / FEATURE_STRIDE + 0.5)
    return np.clip(c, 0, cells_n - 1).astype(np.int64)


def inside_image(points: Float[np.ndarray, "*n 2"], size: int) -> np.ndarray:
    """True where a point lies inside a ``size`` square image (pixel edges [-0.5, size - 0.5))."""
    p = np.asarray(points, np.float64)
    return np.all((p >= -0.5) & (p < size - 0.5) & np.isfinite(p), axis=-1)


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


def _sigma(persons: Mapping[str, np.ndarray], i: int, sigma_min: float) -> float:
    h, w = _box_size_cells(persons, i)
    sigma = (2 * gaussian_radius(h, w) + 1) / 6 if h > 0 and w > 0 else 0.0
    return max(sigma, float(sigma_min))


def _select(persons, centres, depths, cells, inside, max_instances) -> tuple[list, list]:
    """(kept, dropped): kept persons nearest first (one per cell, at most k); dropped: the real
    persons inside the image who are not kept (no flag, shared cell, beyond k)."""
    annotated = np.zeros(len(centres), bool)
    for flag in _TARGET_FLAGS:
        annotated |= np.asarray(persons[flag], bool)
    keep: list[int] = []
    dropped: list[int] = []
    taken: set[tuple[int, int]] = set()
    for i in np.argsort(depths, kind="stable"):
        if not inside[i]:
            continue
        key = (int(cells[i, 0]), int(cells[i, 1]))
        if not annotated[i] or key in taken or len(keep) >= max_instances:
            dropped.append(int(i))  # a nearer person already holds the cell, or no slot left
            continue
        taken.add(key)
        keep.append(int(i))
    return keep, dropped


def ignore_box_cells(boxes: Float[np.ndarray, "m 4"], cells_n: int) -> np.ndarray:
    """``[h w]`` bool: cells whose receptive-field centre lies in one of the boxes (x0, y0, x1,
    y1 pixels), and the cell of each box centre (so a box smaller than a cell still counts)."""
    mask = np.zeros((cells_n, cells_n), bool)
    centre_px = np.arange(cells_n) * FEATURE_STRIDE + CELL_CENTRE_OFFSET
    for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
        if not (x1 > x0 and y1 > y0):
            continue
        in_x = (centre_px >= x0) & (centre_px <= x1)
        in_y = (centre_px >= y0) & (centre_px <= y1)
        mask |= in_y[:, None] & in_x[None, :]
        mid = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1)])
        if np.all((mid >= -0.5) & (mid < cells_n * FEATURE_STRIDE - 0.5)):
            cx, cy = cell_of_pixel(mid, cells_n)
            mask[cy, cx] = True
    return mask


def build_targets(
    persons: Mapping[str, np.ndarray],
    intrinsics: Float[np.ndarray, "3 3"],
    input_size: int,
    max_instances: int,
    sigma_min: float,
    *,
    all_persons_annotated: bool = True,
    ignore_boxes: Float[np.ndarray, "m 4"] | None = None,
) -> dict[str, np.ndarray]:
    """Orders, filters and pads persons to k slots and draws the centre heatmap.

    Returns every ``PERSON_KEYS`` field as ``[k ...]`` (zeros in empty slots) plus
    ``center_cells [k 2] int32``, ``person_valid [k] bool``, ``center_heatmap [h w] float32``,
    ``center_ignore [h w] bool`` (don't-care cells, module doc) and ``all_persons_annotated``.
    ``ignore_boxes`` are in input pixels (already augmented).
    """
    if input_size % FEATURE_STRIDE:
        raise ValueError(f"input_size {input_size} is not a multiple of {FEATURE_STRIDE}")
    cells_n = input_size // FEATURE_STRIDE
    n = np.asarray(persons["betas"]).shape[0]
    centres = person_centres(persons) if n else np.zeros((0, 2))
    cells = cell_of_pixel(centres, cells_n)
    inside = inside_image(centres, input_size)
    depths = person_depths(persons, intrinsics) if n else np.zeros(0)
    keep, dropped = _select(persons, centres, depths, cells, inside, max_instances)
    out: dict[str, np.ndarray] = {}
    for name in PERSON_KEYS:
        shape, dtype = schema.STORED_PERSON_FIELDS[name]
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
        draw_gaussian(heatmap, cells[i], _sigma(persons, i, sigma_min))
    ignore = np.zeros((cells_n, cells_n), bool)
    if ignore_boxes is not None:
        ignore |= ignore_box_cells(ignore_boxes, cells_n)
    for i in dropped:
        g = np.zeros_like(heatmap)
        draw_gaussian(g, cells[i], _sigma(persons, i, sigma_min))
        ignore |= g > heatmap
    out["center_heatmap"] = heatmap
    out["center_ignore"] = ignore & (heatmap < 1.0)  # a target centre is never don't-care
    out["all_persons_annotated"] = np.bool_(all_persons_annotated)
    return out
