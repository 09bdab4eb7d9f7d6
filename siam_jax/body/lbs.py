"""Linear blend skinning in smplx's vocabulary (smplx/lbs.py), written for speed in JAX.

Batch layout: a single flat batch axis `b` (BodyModel flattens any leading shape first).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def blend_shapes(
    betas: Float[Array, "b l"], shapedirs: Float[Array, "v 3 l"]
) -> Float[Array, "b v 3"]:
    """Shape offsets: einsum('bl,mkl->bmk') as in smplx/lbs.py: blend_shapes."""
    return jnp.einsum("bl,mkl->bmk", betas, shapedirs)


def vertices2joints(
    j_regressor: Float[Array, "j v"], vertices: Float[Array, "b v 3"]
) -> Float[Array, "b j 3"]:
    """Joint locations regressed from vertices: einsum('bik,ji->bjk') (smplx/lbs.py)."""
    return jnp.einsum("bik,ji->bjk", vertices, j_regressor)


def _levels(parents: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Joints grouped by depth in the tree (root excluded): [(joints, their parents), ...]."""
    depth = [0] * len(parents)
    for i in range(1, len(parents)):
        depth[i] = depth[parents[i]] + 1
    out = []
    for d in range(1, max(depth) + 1):
        idx = tuple(i for i in range(len(parents)) if depth[i] == d)
        out.append((idx, tuple(parents[i] for i in idx)))
    return out


def batch_rigid_transform(
    rot_mats: Float[Array, "b j 3 3"],
    joints: Float[Array, "b j 3"],
    parents: tuple[int, ...],
) -> tuple[Float[Array, "b j 3"], Float[Array, "b j 3 4"]]:
    """Forward kinematics (smplx/lbs.py: batch_rigid_transform).

    Returns the posed joints and the relative transforms A_i = [R^g_i | t^g_i - R^g_i J_i] as
    [b j 3 4] (the constant [0 0 0 1] row is never materialised). `parents` is static; the chain
    is evaluated one tree level at a time (9 levels for SMPL instead of 23 serial steps), which
    keeps the traced graph small for compilation and differentiation.
    """
    if parents[0] != -1 or any(not 0 <= p < i for i, p in enumerate(parents) if i > 0):
        raise ValueError(f"parents must be a topologically ordered tree rooted at 0: {parents}")
    parent_idx = jnp.asarray((0, *parents[1:]))
    rel = joints - joints[:, parent_idx]
    rel = rel.at[:, 0].set(joints[:, 0])
    g_rot = jnp.zeros_like(rot_mats).at[:, 0].set(rot_mats[:, 0])
    g_t = jnp.zeros_like(joints).at[:, 0].set(rel[:, 0])
    for idx, par in _levels(parents):
        i, p = jnp.asarray(idx), jnp.asarray(par)
        # G_i = G_p @ [[R_i, rel_i], [0, 1]]
        parent_rot = g_rot[:, p]
        g_rot = g_rot.at[:, i].set(parent_rot @ rot_mats[:, i])
        g_t = g_t.at[:, i].set(jnp.einsum("bjkl,bjl->bjk", parent_rot, rel[:, i]) + g_t[:, p])
    # Remove the rest-pose joint: t - R J (smplx pads J with a 0 and subtracts G @ [J; 0]).
    t = g_t - jnp.einsum("bjkl,bjl->bjk", g_rot, joints)
    return g_t, jnp.concatenate([g_rot, t[..., None]], axis=-1)


# Above this batch the skinning runs in chunks so the per-vertex transforms ([c 12 v]) stay
# in cache instead of a [b 12 v] round trip through memory (measured in benchmarking/smpl.py).
_SKIN_CHUNK = 32
_SKIN_CHUNK_ABOVE = 128


def _skin_one(
    transforms: Float[Array, "j 3 4"], v_posed: Float[Array, "v 3"], weights_t: Float[Array, "j v"]
) -> Float[Array, "v 3"]:
    j = transforms.shape[0]
    # [12 v] = A^T W^T: the blended 3x4 transform of every vertex, coordinate-major so that the
    # application below is three fused multiply-adds per output coordinate (no [v 4 4]).
    t = transforms.reshape(j, 12).T @ weights_t
    x, y, z = v_posed[:, 0], v_posed[:, 1], v_posed[:, 2]
    return jnp.stack(
        [t[4 * k] * x + t[4 * k + 1] * y + t[4 * k + 2] * z + t[4 * k + 3] for k in range(3)],
        axis=-1,
    )


def skin(
    weights: Float[Array, "v j"],
    transforms: Float[Array, "b j 3 4"],
    v_posed: Float[Array, "b v 3"],
) -> Float[Array, "b v 3"]:
    """Blend the joint transforms per vertex (weights @ A, as [3 4]) and apply them."""
    weights_t = weights.T
    if transforms.shape[0] <= _SKIN_CHUNK_ABOVE:
        return jax.vmap(_skin_one, (0, 0, None))(transforms, v_posed, weights_t)
    return jax.lax.map(
        lambda a: _skin_one(a[0], a[1], weights_t), (transforms, v_posed), batch_size=_SKIN_CHUNK
    )


def lbs(
    betas: Float[Array, "b l"],
    rot_mats: Float[Array, "b 24 3 3"],
    v_template: Float[Array, "v 3"],
    shapedirs: Float[Array, "v 3 l"],
    posedirs: Float[Array, "p v3"],
    j_regressor: Float[Array, "j v"],
    parents: tuple[int, ...],
    weights: Float[Array, "v j"],
) -> tuple[Float[Array, "b v 3"], Float[Array, "b j 3"]]:
    """Shape + pose blend shapes, forward kinematics and skinning (smplx/lbs.py: lbs).

    Takes rotation matrices (smplx's pose2rot=False path). Same linear maps as smplx, ordered
    for speed: the rest joints are J_r v_t + (J_r S) beta (no [b v 3] x [j v] contraction), and
    the blend shapes are flat GEMMs [b, l] @ [l, v*3] and [b, 207] @ [207, v*3].
    """
    b = betas.shape[0]
    v, _, nb = shapedirs.shape
    j_template = j_regressor @ v_template
    j_dirs = (j_regressor @ shapedirs.reshape(v, 3 * nb)).reshape(-1, 3, nb)
    joints = j_template[None] + jnp.einsum("bl,jkl->bjk", betas, j_dirs)
    eye = jnp.eye(3, dtype=rot_mats.dtype)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(b, -1)
    shape_offsets = betas @ shapedirs.reshape(v * 3, nb).T
    pose_offsets = pose_feature @ posedirs
    v_posed = (v_template.reshape(-1) + shape_offsets + pose_offsets).reshape(b, v, 3)
    posed_joints, transforms = batch_rigid_transform(rot_mats, joints, parents)
    return skin(weights, transforms, v_posed), posed_joints


__all__ = ["batch_rigid_transform", "blend_shapes", "lbs", "skin", "vertices2joints"]
