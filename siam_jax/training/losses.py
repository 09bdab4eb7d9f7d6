"""Training losses of SIAM: one named term each, every term masked by its own supervision flag.

``compute_losses(outputs, aux, batch, ...)`` returns ``(total, terms)``: the weighted sum and a dict
of the unweighted terms (logged as ``loss_<name>``). Each per-person term counts only the persons
whose dataset annotates it (schema 2 flags, ``siam_jax.data.schema``; ``TERM_FLAGS``), so a batch
without any such person gives 0 for that term, not NaN. Means are over the global batch: under a
sharded ``jax.jit`` the sums are global, so 1 and N devices give the same value.

* ``pose`` (body_pose, ``has_pose``), ``global_orient`` (``has_global_orient``), ``betas``
  (``has_betas``), ``transl`` (``has_transl``), ``vertices`` (the GT mesh needs all three of
  pose, orientation and shape).
* ``keypoints_3d`` / ``keypoints_2d``: the dataset's own joints in the named superset
  (``siam_jax.body.keypoints``), against the same points regressed from the *predicted* mesh
  (SPIN/ROMP's extra regressors), 3D pelvis-aligned. The GT superset merges the dataset points
  (``keypoints_*``, ``has_keypoints_*``) with the SMPL-24 joints (``joints_3d`` / ``joints_2d``,
  ``has_3d`` / ``has_2d``, into the ``smpl_*`` points) and the H36M-17 joints (``has_h36m``, into
  ``h36m17_*``); each point is weighted by its visibility.
* ``center``: CenterNet's focal loss; negatives count only in frames with
  ``all_persons_annotated`` and outside ``center_ignore`` (don't-care cells, data/targets.py).

``supervision_counts(batch)`` gives, per term, how many persons (points, heatmap cells) receive
supervision: what a test or a log checks to see which dataset feeds which term.

Shapes: b batch, t frames, k instance slots, h w feature cells, j points, v vertices.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from siam_jax.body import joint_sets
from siam_jax.body import keypoints as kp_lib
from siam_jax.models import camera as camera_lib

# SMPL joint 0 is the pelvis (smplx joint order, smplx/joint_names.py: JOINT_NAMES[0]).
PELVIS = 0
# CenterNet clamps the sigmoid to [1e-4, 1 - 1e-4] before the focal loss
# (xingyizhou/CenterNet src/lib/models/utils.py: _sigmoid).
_FOCAL_EPS = 1e-4

TERMS = (
    "center",
    "pose",
    "global_orient",
    "betas",
    "transl",
    "keypoints_3d",
    "keypoints_2d",
    "vertices",
    "decorrelation",
    "betas_prior",
)

# Per-person terms and the flags that supervise them: ("any", flags) = one of them suffices,
# ("all", flags) = every one is needed.
TERM_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pose": ("all", ("has_pose",)),
    "global_orient": ("all", ("has_global_orient",)),
    "betas": ("all", ("has_betas",)),
    "transl": ("all", ("has_transl",)),
    "keypoints_3d": ("any", ("has_keypoints_3d", "has_3d", "has_h36m")),
    "keypoints_2d": ("any", ("has_keypoints_2d", "has_2d")),
    "vertices": ("all", ("has_pose", "has_global_orient", "has_betas")),
    "betas_prior": ("all", ()),  # every real person
}

# Batch keys compute_losses reads (docs/architecture.md "Batches"); the train step must pass them.
BATCH_KEYS = (
    "intrinsics", "center_heatmap", "center_ignore", "all_persons_annotated", "person_valid",
    "betas", "global_orient", "body_pose", "transl", "joints_3d", "joints_2d", "visibility",
    "joints_h36m_3d", "h36m_visibility", "keypoints_3d", "keypoints_3d_visibility",
    "keypoints_2d", "keypoints_2d_visibility", "has_pose", "has_global_orient", "has_betas",
    "has_transl", "has_3d", "has_2d", "has_h36m", "has_keypoints_3d", "has_keypoints_2d",
)  # fmt: skip

_SMPL_POINTS = np.array([kp_lib.KEYPOINT_INDEX[f"smpl_{n}"] for n in joint_sets.SMPL_JOINT_NAMES])
_H36M_POINTS = np.array([kp_lib.KEYPOINT_INDEX[f"h36m17_{n}"] for n in joint_sets.H36M_JOINT_NAMES])
# Root of the 3D alignment, first available per person (SPIN aligns its GT joints at the pelvis,
# ROMP at the pelvis or the hip midpoint): SMPL pelvis, H36M pelvis, MPII pelvis, dataset hips,
# SMPL hips. Prediction and GT use the same choice.
PELVIS_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("smpl_pelvis",),
    ("h36m17_pelvis",),
    ("mpii_pelvis",),
    ("lsp_left_hip", "lsp_right_hip"),
    ("smpl_left_hip", "smpl_right_hip"),
)


def _masked_mean(per_person: Float[Array, "b t k"], mask: Bool[Array, "b t k"]) -> Array:
    """Mean of ``per_person`` over the slots in ``mask`` (0 when none)."""
    m = mask.astype(per_person.dtype)
    return jnp.sum(per_person * m) / jnp.maximum(jnp.sum(m), 1.0)


def center_weights(
    target: Float[Array, "b t h w"],
    frame_mask: Bool[Array, "b t"] | None = None,
    negative_mask: Bool[Array, "b t h w"] | None = None,
) -> tuple[Array, Array]:
    """(positive, negative) per-cell weights of the focal loss: positives are the target peaks
    of counted frames; negatives the other cells of counted frames where ``negative_mask``."""
    y = target.astype(jnp.float32)
    pos = (y >= 1.0 - 1e-6).astype(jnp.float32)
    fm = jnp.ones(y.shape[:2], jnp.float32) if frame_mask is None else frame_mask
    fm = fm.astype(jnp.float32)[..., None, None]
    neg = (1.0 - pos) * fm
    if negative_mask is not None:
        neg = neg * negative_mask.astype(jnp.float32)
    return pos * fm, neg


def center_focal_loss(
    pred: Float[Array, "b t h w"],
    target: Float[Array, "b t h w"],
    frame_mask: Bool[Array, "b t"] | None = None,
    negative_mask: Bool[Array, "b t h w"] | None = None,
) -> Array:
    """CenterNet's penalty-reduced pixel-wise focal loss (Zhou et al. 2019, eq. 1; alpha=2, beta=4).

    ``pred`` is the sigmoid heatmap, ``target`` the Gaussian centre targets whose peaks are 1.
    ``frame_mask`` drops whole frames; ``negative_mask`` keeps a non-peak cell as a negative only
    where True (fully annotated frames, outside don't-care cells). Normalised by the number of
    counted centres (peaks) in the batch.
    """
    p = jnp.clip(pred.astype(jnp.float32), _FOCAL_EPS, 1.0 - _FOCAL_EPS)
    y = target.astype(jnp.float32)
    pos, neg = center_weights(target, frame_mask, negative_mask)
    pos_loss = -jnp.log(p) * jnp.square(1.0 - p) * pos
    neg_loss = -jnp.log(1.0 - p) * jnp.square(p) * jnp.power(1.0 - y, 4) * neg
    return jnp.sum(pos_loss + neg_loss) / jnp.maximum(jnp.sum(pos), 1.0)


def rotmat_loss(
    pred_rotmats: Float[Array, "b t k n 3 3"],
    gt_rotmats: Float[Array, "b t k n 3 3"],
    mask: Bool[Array, "b t k"],
) -> Array:
    """Mean squared error of rotation-matrix entries (SPIN/ROMP pose loss), per valid person."""
    per = jnp.mean(jnp.square(pred_rotmats - gt_rotmats), axis=(-3, -2, -1))
    return _masked_mean(per, mask)


def betas_loss(
    pred: Float[Array, "b t k nb"], gt: Float[Array, "b t k nb"], mask: Bool[Array, "b t k"]
) -> Array:
    """Mean squared error of the shape coefficients, per valid person."""
    return _masked_mean(jnp.mean(jnp.square(pred - gt), axis=-1), mask)


def transl_loss(
    pred: Float[Array, "b t k 3"], gt: Float[Array, "b t k 3"], mask: Bool[Array, "b t k"]
) -> Array:
    """L1 between SMPL translations (metres, camera frame), mean over the 3 coordinates."""
    return _masked_mean(jnp.mean(jnp.abs(pred - gt), axis=-1), mask)


def pelvis_aligned(points: Float[Array, "... n 3"], pelvis: Float[Array, "... 3"]) -> Array:
    return points - pelvis[..., None, :]


def alignment_root(
    pred: Float[Array, "... j 3"], gt: Float[Array, "... j 3"], weight: Float[Array, "... j"]
) -> tuple[Array, Array, Array]:
    """(pred root, GT root, found) per person: the first of ``PELVIS_CANDIDATES`` whose points
    all have weight > 0 in the superset (mean of its points), the same points for both."""
    pred_root = jnp.zeros((*pred.shape[:-2], 3), pred.dtype)
    gt_root = jnp.zeros_like(pred_root)
    found = jnp.zeros(pred.shape[:-2], bool)
    for names in reversed(PELVIS_CANDIDATES):  # the first candidate is applied last: it wins
        idx = jnp.asarray([kp_lib.KEYPOINT_INDEX[n] for n in names])
        ok = jnp.all(weight[..., idx] > 0, axis=-1)
        pred_root = jnp.where(ok[..., None], jnp.mean(pred[..., idx, :], axis=-2), pred_root)
        gt_root = jnp.where(ok[..., None], jnp.mean(gt[..., idx, :], axis=-2), gt_root)
        found = found | ok
    return pred_root, gt_root, found


def keypoints_3d_loss(
    pred: Float[Array, "b t k j 3"],
    gt: Float[Array, "b t k j 3"],
    weight: Float[Array, "b t k j"],
    mask: Bool[Array, "b t k"],
) -> Array:
    """L1 between root-aligned superset points (metres; ``alignment_root``), mean over the
    coordinates and the weighted points of the persons in ``mask`` that have a root."""
    pred_root, gt_root, found = alignment_root(pred, gt, weight)
    w = weight * (mask & found).astype(jnp.float32)[..., None]
    d = jnp.mean(jnp.abs(pelvis_aligned(pred, pred_root) - pelvis_aligned(gt, gt_root)), -1)
    return jnp.sum(d * w) / jnp.maximum(jnp.sum(w), 1.0)


def keypoints_2d_loss(
    pred: Float[Array, "b t k j 2"],
    gt: Float[Array, "b t k j 2"],
    visibility: Float[Array, "b t k j"],
    mask: Bool[Array, "b t k"],
    input_size: int,
) -> Array:
    """L1 between 2D points in coordinates normalised by the input size, weighted by visibility.

    Mean over the visible points of the persons in ``mask`` (pixels / input_size, so the loss does
    not depend on the input resolution).
    """
    w = visibility.astype(jnp.float32) * mask.astype(jnp.float32)[..., None]
    d = jnp.sum(jnp.abs(pred - gt) / float(input_size), axis=-1)  # [b t k j]
    return jnp.sum(d * w) / jnp.maximum(jnp.sum(w), 1.0)


def vertices_loss(
    pred_vertices: Float[Array, "b t k v 3"],
    pred_pelvis: Float[Array, "b t k 3"],
    gt_vertices: Float[Array, "b t k v 3"],
    gt_pelvis: Float[Array, "b t k 3"],
    mask: Bool[Array, "b t k"],
) -> Array:
    """L1 between pelvis-aligned vertices (metres) where a GT mesh exists."""
    p = pelvis_aligned(pred_vertices, pred_pelvis)
    g = pelvis_aligned(gt_vertices, gt_pelvis)
    return _masked_mean(jnp.mean(jnp.abs(p - g), axis=(-2, -1)), mask)


def betas_prior_loss(pred: Float[Array, "b t k nb"], mask: Bool[Array, "b t k"]) -> Array:
    """Squared norm of the predicted betas (a zero-mean Gaussian shape prior), every real person."""
    return _masked_mean(jnp.sum(jnp.square(pred), axis=-1), mask)


# ------------------------------------------------------------------------------ ground truth
def gt_rotmats(batch: Mapping[str, Array]) -> Float[Array, "b t k 24 3 3"]:
    """GT pose as rotation matrices: global orient then the 23 body joints (axis-angle in)."""
    from siam_jax.body import rotations

    aa = jnp.concatenate([batch["global_orient"][..., None, :], batch["body_pose"]], axis=-2)
    return rotations.axis_angle_to_matrix(aa.astype(jnp.float32))


def gt_mesh(batch: Mapping[str, Array], body_model) -> tuple[Array, Array]:
    """GT vertices and pelvis (camera-frame rotation, no translation) from the body model."""
    out = body_model(
        betas=batch["betas"].astype(jnp.float32),
        body_pose=batch["body_pose"].astype(jnp.float32),
        global_orient=batch["global_orient"].astype(jnp.float32),
        transl=None,
    )
    return out.vertices, out.joints[..., PELVIS, :]


def _flag(batch: Mapping[str, Array], name: str) -> Array:
    if name not in batch:
        raise KeyError(f"batch is missing {name!r} (losses.BATCH_KEYS; schema 2 datasets)")
    return batch[name].astype(bool)


def valid_persons(batch: Mapping[str, Array]) -> Bool[Array, "b t k"]:
    """Real persons: ``person_valid`` of a counted frame (``batch_valid``, when present)."""
    valid = batch["person_valid"].astype(bool)
    if "batch_valid" in batch:
        valid = valid & batch["batch_valid"].astype(bool)[:, None, None]
    return valid


def person_masks(batch: Mapping[str, Array]) -> dict[str, Bool[Array, "b t k"]]:
    """The persons each per-person term supervises (``TERM_FLAGS``)."""
    valid = valid_persons(batch)
    out = {}
    for term, (how, flags) in TERM_FLAGS.items():
        m = valid
        if flags:
            fs = [_flag(batch, f) for f in flags]
            combined = fs[0]
            for f in fs[1:]:
                combined = (combined | f) if how == "any" else (combined & f)
            m = m & combined
        out[term] = m
    return out


def _merge(points, weight, idx, extra_points, extra_weight):
    """Superset slots ``idx`` take ``extra_points`` where they hold no dataset point yet."""
    points, weight = jnp.asarray(points), jnp.asarray(weight)
    take = (weight[..., idx] <= 0) & (extra_weight > 0)
    points = points.at[..., idx, :].set(
        jnp.where(take[..., None], extra_points, points[..., idx, :])
    )
    weight = weight.at[..., idx].set(jnp.where(take, extra_weight, weight[..., idx]))
    return points, weight


def gt_superset_3d(batch: Mapping[str, Array]) -> tuple[Array, Array]:
    """GT superset 3D points ``[b t k 61 3]`` and weights ``[b t k 61]`` (module doc)."""
    pts = batch["keypoints_3d"].astype(jnp.float32)
    w = batch["keypoints_3d_visibility"].astype(jnp.float32)
    w = w * _flag(batch, "has_keypoints_3d").astype(jnp.float32)[..., None]
    has_3d = _flag(batch, "has_3d").astype(jnp.float32)[..., None]
    smpl_w = jnp.broadcast_to(has_3d, (*w.shape[:-1], len(_SMPL_POINTS)))
    pts, w = _merge(pts, w, _SMPL_POINTS, batch["joints_3d"].astype(jnp.float32), smpl_w)
    h36m_w = batch["h36m_visibility"].astype(jnp.float32)
    h36m_w = h36m_w * _flag(batch, "has_h36m").astype(jnp.float32)[..., None]
    pts, w = _merge(pts, w, _H36M_POINTS, batch["joints_h36m_3d"].astype(jnp.float32), h36m_w)
    return pts, w


def gt_superset_2d(batch: Mapping[str, Array]) -> tuple[Array, Array]:
    """GT superset 2D points ``[b t k 61 2]`` (input pixels) and weights ``[b t k 61]``."""
    pts = batch["keypoints_2d"].astype(jnp.float32)
    w = batch["keypoints_2d_visibility"].astype(jnp.float32)
    w = w * _flag(batch, "has_keypoints_2d").astype(jnp.float32)[..., None]
    smpl_w = batch["visibility"].astype(jnp.float32)
    smpl_w = smpl_w * _flag(batch, "has_2d").astype(jnp.float32)[..., None]
    return _merge(pts, w, _SMPL_POINTS, batch["joints_2d"].astype(jnp.float32), smpl_w)


def available_points(regressors: kp_lib.KeypointRegressors, num_vertices: int) -> np.ndarray:
    """``[61]`` bool: superset points regressable from a mesh of ``num_vertices`` vertices with
    ``regressors`` (vertex points need SMPL's 6890-vertex topology)."""
    names = set(kp_lib.available_names(regressors))
    ok = np.array([p.name in names for p in kp_lib.KEYPOINTS])
    if num_vertices != 6890:
        ok &= np.array([p.source != "vertex" for p in kp_lib.KEYPOINTS])
    return ok


def predicted_superset(
    vertices: Float[Array, "... v 3"],
    joints: Float[Array, "... 24 3"],
    regressors: kp_lib.KeypointRegressors,
) -> tuple[Float[Array, "... 61 3"], np.ndarray]:
    """The superset points of the predicted meshes (zeros where not regressable) and which
    points are available (``available_points``)."""
    ok = available_points(regressors, vertices.shape[-2])
    names = tuple(n for n, a in zip(kp_lib.KEYPOINT_NAMES, ok, strict=True) if a)
    sub = kp_lib.regress_keypoints(vertices, joints, regressors, names)
    full = jnp.zeros((*joints.shape[:-2], kp_lib.NUM_KEYPOINTS, 3), sub.dtype)
    return full.at[..., jnp.asarray(np.flatnonzero(ok)), :].set(sub), ok


# Superset points that are the 24 SMPL joints themselves (the first 24, keypoints.KEYPOINTS); the
# others (vertex, J_regressor_extra, J_regressor_h36m points) need the posed mesh.
_JOINT_POINTS = np.array([p.source == "smpl" for p in kp_lib.KEYPOINTS])
assert _JOINT_POINTS[: len(_SMPL_POINTS)].all() and not _JOINT_POINTS[len(_SMPL_POINTS) :].any()


def _mesh_point_weight(batch: Mapping[str, Array], weights: Mapping[str, float]) -> Array:
    """Total GT weight on the superset points that need the predicted mesh, over the keypoint
    terms that are on (scalar; 0 = no such point supervised in this batch)."""
    total = jnp.zeros((), jnp.float32)
    for term, gt_fn in (("keypoints_3d", gt_superset_3d), ("keypoints_2d", gt_superset_2d)):
        if float(weights.get(term, 0.0)) != 0.0:
            total = total + gt_fn(batch)[1][..., ~_JOINT_POINTS].sum()
    return total


def mesh_points_supervised(batch: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> bool:
    """Whether a host batch supervises a superset point that needs the predicted mesh (numpy;
    ``_mesh_point_weight(batch, weights) > 0`` without a device round trip).

    The trainer passes it to ``compute_losses`` as the static ``mesh_points``, so a batch of
    SMPL-joint datasets runs a step without the skinning branch at all: under ``jax.grad`` a
    ``lax.cond`` must return the residuals of both branches, so its joints-only branch still
    wrote zeros the size of ``posedirs`` (207 x 20670) every step (about 5% of the quickstart's
    step; docs/choices.md "Quickstart step profile").
    """
    total = 0.0
    if float(weights.get("keypoints_3d", 0.0)) != 0.0:
        w = np.asarray(batch["keypoints_3d_visibility"], np.float32)
        w = w * np.asarray(batch["has_keypoints_3d"], np.float32)[..., None]
        # H36M-17 joints fill the h36m17_* points, none of which is a kinematic joint.
        h = np.asarray(batch["h36m_visibility"], np.float32)
        total += float(w[..., ~_JOINT_POINTS].sum())
        total += float((h * np.asarray(batch["has_h36m"], np.float32)[..., None]).sum())
    if float(weights.get("keypoints_2d", 0.0)) != 0.0:
        w = np.asarray(batch["keypoints_2d_visibility"], np.float32)
        w = w * np.asarray(batch["has_keypoints_2d"], np.float32)[..., None]
        total += float(w[..., ~_JOINT_POINTS].sum())
    return total > 0


def superset_where_supervised(
    outputs: Mapping[str, object],
    joints: Float[Array, "b t k 24 3"],
    regressors: kp_lib.KeypointRegressors,
    body_model,
    mesh_point_weight: Array | bool,
) -> tuple[Float[Array, "b t k 61 3"], np.ndarray]:
    """``predicted_superset`` of the predicted bodies, posing and skinning their meshes only
    when the batch supervises a point that needs them: the other points are the 24 kinematic
    joints, which need no skinning. ``mesh_point_weight`` is a Python bool (decided on the host,
    ``mesh_points_supervised``: one branch traced) or a traced weight (``> 0`` picks the branch
    in a ``lax.cond``). Where no such point is supervised the mesh points are 0 and carry weight
    0, so the losses are the same either way; a mixture of SMPL-joint datasets (the synthetic
    set) never skins."""
    # The model's mesh size (a shape: reading it computes nothing).
    ok = available_points(regressors, outputs["pred_vertices"].shape[-2])
    params = outputs["pred_smpl_params"]

    def with_mesh():
        body = body_model(
            betas=params["betas"].astype(jnp.float32),
            body_pose=params["body_pose"].astype(jnp.float32),
            global_orient=params["global_orient"].astype(jnp.float32),
            transl=outputs["pred_cam_t"].astype(jnp.float32),
        )
        return predicted_superset(body.vertices, joints, regressors)[0]

    def joints_only():
        full = jnp.zeros((*joints.shape[:-2], kp_lib.NUM_KEYPOINTS, 3), joints.dtype)
        return full.at[..., : len(_SMPL_POINTS), :].set(joints)

    if isinstance(mesh_point_weight, bool):
        return (with_mesh() if mesh_point_weight else joints_only()), ok
    return jax.lax.cond(mesh_point_weight > 0, with_mesh, joints_only), ok


def _centre_negative_mask(batch: Mapping[str, Array]) -> Array:
    """Cells that may be negatives: fully annotated frames, outside ``center_ignore``."""
    full = _flag(batch, "all_persons_annotated")[..., None, None]
    return full & ~_flag(batch, "center_ignore")


def _frame_mask(batch: Mapping[str, Array]) -> Array | None:
    if "batch_valid" not in batch:
        return None
    bv = batch["batch_valid"].astype(bool)
    return jnp.broadcast_to(bv[:, None], batch["center_heatmap"].shape[:2])


def supervision_counts(
    batch: Mapping[str, Array], regressors: kp_lib.KeypointRegressors | None = None
) -> dict[str, Array]:
    """Per term, the amount of supervision in ``batch``: persons for the SMPL terms, weighted
    points for the keypoint terms (only points the model can regress when ``regressors`` is
    given, vertex points assumed regressable), positive and negative cells for ``center``."""
    masks = person_masks(batch)
    out = {t: jnp.sum(m.astype(jnp.float32)) for t, m in masks.items()}
    for term, gt_fn in (("keypoints_3d", gt_superset_3d), ("keypoints_2d", gt_superset_2d)):
        _, w = gt_fn(batch)
        if regressors is not None:
            w = w * jnp.asarray(available_points(regressors, 6890), jnp.float32)
        out[term] = jnp.sum(w * masks[term].astype(jnp.float32)[..., None])
    pos, neg = center_weights(
        batch["center_heatmap"], _frame_mask(batch), _centre_negative_mask(batch)
    )
    out["center_positives"], out["center_negatives"] = jnp.sum(pos), jnp.sum(neg)
    return out


# ------------------------------------------------------------------------------ all terms
def compute_losses(
    outputs: Mapping[str, object],
    aux: Mapping[str, Array],
    batch: Mapping[str, Array],
    *,
    body_model,
    weights: Mapping[str, float],
    input_size: int,
    keypoint_regressors: kp_lib.KeypointRegressors | None = None,
    mesh_points: bool | None = None,
) -> tuple[Array, dict[str, Array]]:
    """All loss terms of SIAM and their weighted sum.

    Args:
      outputs: the model output vocabulary (docs/architecture.md).
      aux: model intermediates; ``fd_decorrelation`` (scalar) if FD is on.
      batch: the batch contract (docs/architecture.md "Batches"; ``BATCH_KEYS``).
      body_model: ``siam_jax.body.BodyModel`` used to build GT vertices.
      weights: ``config.loss`` (one weight per name in ``TERMS``).
      input_size: network input size in pixels (normalises the 2D loss).
      keypoint_regressors: the superset regressors applied to the predicted mesh (SPIN's
        J_regressor_extra / J_regressor_h36m, ``KeypointRegressors.from_folder``); None = the
        body model's own (``keypoints.regressors_of_model``: its H36M regressor and the extra
        points derived from it, the procedural model's extra regressor).
      mesh_points: whether the batch supervises superset points that need the predicted mesh
        (``mesh_points_supervised`` of the host batch); None decides on the device (a
        ``lax.cond``). Wrong ``False`` drops those points' loss; the trainer computes it.

    Returns:
      ``(total, terms)``; ``terms`` holds the unweighted value of each name in ``TERMS`` whose
      weight is not 0 (the others are not computed).
    """
    # Longer than the house's ~60 lines on purpose: the body is one table of lazily evaluated
    # terms (``term_fns``) and the closures it needs; each term's loss is its own function above,
    # and cutting the table apart would scatter which term reads which output and mask.
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise ValueError(f"config.loss has unknown terms {sorted(unknown)}; known: {TERMS}")
    masks = person_masks(batch)

    def smpl(name):  # read lazily: a term of weight 0 needs none of its outputs
        return outputs["pred_smpl_params"][name].astype(jnp.float32)

    def pred_j24():
        return outputs["pred_keypoints_3d"].astype(jnp.float32)

    def rot_term(name, lo, hi, mask):
        return rotmat_loss(smpl(name), gt_rotmats(batch)[..., lo:hi, :, :], mask)

    memo = {}

    def superset():  # once for both keypoint terms
        if "superset" not in memo:
            regs = keypoint_regressors
            if regs is None:
                regs = kp_lib.regressors_of_model(body_model)
            decide = _mesh_point_weight(batch, weights) if mesh_points is None else mesh_points
            memo["superset"] = superset_where_supervised(
                outputs, pred_j24(), regs, body_model, decide
            )
        return memo["superset"]

    def keypoints_3d():
        pred, ok = superset()
        gt, w = gt_superset_3d(batch)
        return keypoints_3d_loss(pred, gt, w * jnp.asarray(ok, jnp.float32), masks["keypoints_3d"])

    def keypoints_2d():
        pred, ok = superset()
        k_mat = batch["intrinsics"].astype(jnp.float32)[:, :, None]  # [b t 1 3 3]
        pred_2d = camera_lib.perspective_projection(pred, k_mat)
        gt, w = gt_superset_2d(batch)
        w = w * jnp.asarray(ok, jnp.float32)
        return keypoints_2d_loss(pred_2d, gt, w, masks["keypoints_2d"], input_size)

    def vertices():
        gt_verts, gt_pelvis = jax.lax.stop_gradient(gt_mesh(batch, body_model))
        pred_verts = outputs["pred_vertices"].astype(jnp.float32)
        return vertices_loss(
            pred_verts, pred_j24()[..., PELVIS, :], gt_verts, gt_pelvis, masks["vertices"]
        )

    term_fns = {
        "center": lambda: center_focal_loss(
            outputs["center_heatmap"],
            batch["center_heatmap"],
            _frame_mask(batch),
            _centre_negative_mask(batch),
        ),
        "pose": lambda: rot_term("body_pose", 1, 24, masks["pose"]),
        "global_orient": lambda: rot_term("global_orient", 0, 1, masks["global_orient"]),
        "betas": lambda: betas_loss(
            smpl("betas"), batch["betas"].astype(jnp.float32), masks["betas"]
        ),
        "transl": lambda: transl_loss(
            outputs["pred_cam_t"].astype(jnp.float32),
            batch["transl"].astype(jnp.float32),
            masks["transl"],
        ),
        "keypoints_3d": keypoints_3d,
        "keypoints_2d": keypoints_2d,
        "vertices": vertices,
        "decorrelation": lambda: jnp.asarray(aux.get("fd_decorrelation", 0.0), jnp.float32),
        "betas_prior": lambda: betas_prior_loss(smpl("betas"), masks["betas_prior"]),
    }
    # A term of weight 0 is neither computed nor returned, so it costs nothing: without the
    # vertex term XLA drops the GT meshes and the predicted skinning, which nothing else reads.
    terms = {n: fn() for n, fn in term_fns.items() if float(weights.get(n, 0.0)) != 0.0}
    total = sum(
        (float(weights[name]) * value for name, value in terms.items()), jnp.zeros((), jnp.float32)
    )
    return total, terms
