"""Training losses of SIAM: one named term each, masked by instance validity and by annotation.

``compute_losses(outputs, aux, batch, ...)`` returns ``(total, terms)``: the weighted sum and a dict
of the unweighted terms (logged as ``loss_<name>``). Every per-person term is a mean over the
persons that count (``person_valid`` and the dataset's ``has_smpl`` / ``has_3d`` / ``has_2d``), so
a batch without any annotated person gives 0 for that term, not NaN. Means are over the global
batch: under a sharded ``jax.jit`` the sums are global, so 1 and N devices give the same value.

Shapes: b batch, t frames, k instance slots, h w feature cells, j = 24 SMPL joints, v vertices.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

# SMPL joint 0 is the pelvis (smplx joint order, smplx/joint_names.py: JOINT_NAMES[0]).
PELVIS = 0
# CenterNet clamps the sigmoid to [1e-4, 1 - 1e-4] before the focal loss
# (xingyizhou/CenterNet src/lib/models/utils.py: _sigmoid).
_FOCAL_EPS = 1e-4

TERMS = (
    "center",
    "pose",
    "betas",
    "keypoints_3d",
    "keypoints_2d",
    "vertices",
    "decorrelation",
    "betas_prior",
)


def _masked_mean(per_person: Float[Array, "b t k"], mask: Bool[Array, "b t k"]) -> Array:
    """Mean of ``per_person`` over the slots in ``mask`` (0 when none)."""
    m = mask.astype(per_person.dtype)
    return jnp.sum(per_person * m) / jnp.maximum(jnp.sum(m), 1.0)


def center_focal_loss(
    pred: Float[Array, "b t h w"],
    target: Float[Array, "b t h w"],
    frame_mask: Bool[Array, "b t"] | None = None,
) -> Array:
    """CenterNet's penalty-reduced pixel-wise focal loss (Zhou et al. 2019, eq. 1; alpha=2, beta=4).

    ``pred`` is the sigmoid heatmap, ``target`` the Gaussian centre targets whose peaks are 1.
    Normalised by the number of centres (peaks) in the batch.
    """
    p = jnp.clip(pred.astype(jnp.float32), _FOCAL_EPS, 1.0 - _FOCAL_EPS)
    y = target.astype(jnp.float32)
    pos = (y >= 1.0 - 1e-6).astype(jnp.float32)
    if frame_mask is not None:
        fm = frame_mask.astype(jnp.float32)[..., None, None]
    else:
        fm = jnp.ones_like(p[..., :1, :1])
    pos_loss = -jnp.log(p) * jnp.square(1.0 - p) * pos
    neg_loss = -jnp.log(1.0 - p) * jnp.square(p) * jnp.power(1.0 - y, 4) * (1.0 - pos)
    num_pos = jnp.sum(pos * fm)
    return jnp.sum((pos_loss + neg_loss) * fm) / jnp.maximum(num_pos, 1.0)


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


def pelvis_aligned(points: Float[Array, "... n 3"], pelvis: Float[Array, "... 3"]) -> Array:
    return points - pelvis[..., None, :]


def keypoints_3d_loss(
    pred: Float[Array, "b t k j 3"], gt: Float[Array, "b t k j 3"], mask: Bool[Array, "b t k"]
) -> Array:
    """L1 between pelvis-aligned 3D joints (metres), mean over joints and coordinates."""
    p = pelvis_aligned(pred, pred[..., PELVIS, :])
    g = pelvis_aligned(gt, gt[..., PELVIS, :])
    return _masked_mean(jnp.mean(jnp.abs(p - g), axis=(-2, -1)), mask)


def keypoints_2d_loss(
    pred: Float[Array, "b t k j 2"],
    gt: Float[Array, "b t k j 2"],
    visibility: Float[Array, "b t k j"],
    mask: Bool[Array, "b t k"],
    input_size: int,
) -> Array:
    """L1 between 2D joints in coordinates normalised by the input size, weighted by visibility.

    Mean over the visible joints of the persons in ``mask`` (pixels / input_size, so the loss does
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


def compute_losses(
    outputs: Mapping[str, object],
    aux: Mapping[str, Array],
    batch: Mapping[str, Array],
    *,
    body_model,
    weights: Mapping[str, float],
    input_size: int,
) -> tuple[Array, dict[str, Array]]:
    """All loss terms of SIAM and their weighted sum.

    Args:
      outputs: the model output vocabulary (docs/architecture.md).
      aux: model intermediates; ``fd_decorrelation`` (scalar) if FD is on.
      batch: the batch contract (docs/architecture.md "Batches").
      body_model: ``siam_jax.body.BodyModel`` used to build GT vertices.
      weights: ``config.loss`` (one weight per name in ``TERMS``).
      input_size: network input size in pixels (normalises the 2D loss).

    Returns:
      ``(total, terms)``; ``terms`` holds the unweighted value of each name in ``TERMS`` whose
      weight is not 0 (the others are not computed).
    """
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise ValueError(f"config.loss has unknown terms {sorted(unknown)}; known: {TERMS}")
    valid = batch["person_valid"].astype(bool)
    if "batch_valid" in batch:
        valid = valid & batch["batch_valid"].astype(bool)[:, None, None]
    has_smpl = valid & batch["has_smpl"].astype(bool)
    has_3d = valid & batch["has_3d"].astype(bool)
    has_2d = valid & batch["has_2d"].astype(bool)
    frame_mask = None
    if "batch_valid" in batch:
        bv = batch["batch_valid"].astype(bool)
        frame_mask = jnp.broadcast_to(bv[:, None], batch["center_heatmap"].shape[:2])

    smpl = outputs["pred_smpl_params"]
    pred_betas = smpl["betas"].astype(jnp.float32)
    pred_kp3d = outputs["pred_keypoints_3d"].astype(jnp.float32)

    def pose():
        pred_rot = jnp.concatenate([smpl["global_orient"], smpl["body_pose"]], axis=-3)
        return rotmat_loss(pred_rot.astype(jnp.float32), gt_rotmats(batch), has_smpl)

    def keypoints_2d():
        pred_kp2d = outputs["pred_keypoints_2d"].astype(jnp.float32)
        gt_kp2d = batch["joints_2d"].astype(jnp.float32)
        return keypoints_2d_loss(pred_kp2d, gt_kp2d, batch["visibility"], has_2d, input_size)

    def vertices():
        gt_verts, gt_pelvis = jax.lax.stop_gradient(gt_mesh(batch, body_model))
        pred_verts = outputs["pred_vertices"].astype(jnp.float32)
        return vertices_loss(pred_verts, pred_kp3d[..., PELVIS, :], gt_verts, gt_pelvis, has_smpl)

    term_fns = {
        "center": lambda: center_focal_loss(
            outputs["center_heatmap"], batch["center_heatmap"], frame_mask
        ),
        "pose": pose,
        "betas": lambda: betas_loss(pred_betas, batch["betas"].astype(jnp.float32), has_smpl),
        "keypoints_3d": lambda: keypoints_3d_loss(
            pred_kp3d, batch["joints_3d"].astype(jnp.float32), has_3d
        ),
        "keypoints_2d": keypoints_2d,
        "vertices": vertices,
        "decorrelation": lambda: jnp.asarray(aux.get("fd_decorrelation", 0.0), jnp.float32),
        "betas_prior": lambda: betas_prior_loss(pred_betas, valid),
    }
    # A term of weight 0 is neither computed nor returned, so it costs nothing: without the
    # vertex term XLA drops the GT meshes and the predicted skinning, which nothing else reads.
    terms = {n: fn() for n, fn in term_fns.items() if float(weights.get(n, 0.0)) != 0.0}
    total = sum(
        (float(weights[name]) * value for name, value in terms.items()), jnp.zeros((), jnp.float32)
    )
    return total, terms
