"""Dataset joints -> the stored per-person fields, and the augmentation of those fields.

``fill_keypoints`` puts a dataset's own joints, given in its own order (``siam_jax.body.keypoints``
joint sets), into the named superset of ``schema.KEYPOINT_FIELDS`` by name, and copies the ones
that are SMPL joints (the limb joints of the 2D datasets, SPIN/ROMP) into ``joints_2d`` /
``visibility``. ``transform_keypoints`` / ``transform_boxes`` apply an augmentation camera change
(``siam_jax.data.augment.FrameTransform``) to the superset and to ``ignore_boxes``, the same maps
``augment.transform_persons`` applies to the SMPL-24 joints and person boxes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float

from siam_jax.body import joint_sets
from siam_jax.body import keypoints as kp
from siam_jax.data import augment, schema

_SMPL_POINTS = np.array([kp.KEYPOINT_INDEX[f"smpl_{n}"] for n in joint_sets.SMPL_JOINT_NAMES])


def fill_keypoints(
    person: dict[str, np.ndarray],
    joint_set: str,
    points_2d: Float[np.ndarray, "j 2"] | None = None,
    visible_2d: np.ndarray | None = None,
    points_3d: Float[np.ndarray, "j 3"] | None = None,
    visible_3d: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Writes a dataset person's joints into ``person`` (a ``schema.empty_person()``) in place.

    ``points_*`` are in the joint set's own order (pixels / metres, camera frame). Joints without a
    superset counterpart are dropped. Sets ``keypoints_*``, their visibility and
    ``has_keypoints_*``; the 2D points that are SMPL joints also fill ``joints_2d`` /
    ``visibility``, and ``has_2d`` is set whenever any 2D point is labelled (so that the person
    counts as annotated; the per-joint visibility gates the loss).
    """
    index = kp.dataset_to_superset(joint_set)
    keep = index >= 0
    for dim, points, visible in (("2d", points_2d, visible_2d), ("3d", points_3d, visible_3d)):
        if points is None:
            continue
        size = 2 if dim == "2d" else 3
        points = np.asarray(points, np.float64)
        if points.shape != (len(index), size):
            raise ValueError(
                f"joint set {joint_set}: {dim} points have shape {points.shape}, "
                f"expected ({len(index)}, {size})"
            )
        vis = np.ones(len(index)) if visible is None else np.asarray(visible, np.float64)
        vis = (vis > 0) & np.all(np.isfinite(points), axis=-1)
        out = np.zeros((schema.NUM_KEYPOINTS, size), np.float32)
        out_vis = np.zeros(schema.NUM_KEYPOINTS, np.float32)
        out[index[keep]] = np.where(vis[keep, None], points[keep], 0.0)
        out_vis[index[keep]] = vis[keep]
        person[f"keypoints_{dim}"] = out
        person[f"keypoints_{dim}_visibility"] = out_vis
        person[f"has_keypoints_{dim}"] = np.bool_(out_vis.any())
    if points_2d is not None:
        person["joints_2d"] = person["keypoints_2d"][_SMPL_POINTS].copy()
        person["visibility"] = person["keypoints_2d_visibility"][_SMPL_POINTS].copy()
        person["has_2d"] = np.bool_(person["has_keypoints_2d"])
    return person


def transform_keypoints(persons: Mapping[str, np.ndarray], tr) -> dict[str, np.ndarray]:
    """``KEYPOINT_FIELDS`` arrays after the camera change ``tr``: ``augment.transform_keypoints``
    (the one implementation; ``augment.transform_persons`` also recomputes 2D visibility)."""
    return augment.transform_keypoints(persons, tr)


def transform_boxes(boxes: Float[np.ndarray, "n 4"], tr) -> Float[np.ndarray, "n 4"]:
    """``ignore_boxes`` after ``tr``: the axis-aligned hull of the 4 mapped corners, as person
    boxes are moved (``augment.transform_boxes``)."""
    return augment.transform_boxes(boxes, tr.pixel)
