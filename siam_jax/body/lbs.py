"""Linear blend skinning in smplx's vocabulary (smplx/lbs.py), written for speed in JAX.

Batch layout: a single flat batch axis `b` (BodyModel flattens any leading shape first).
"""

from __future__ import annotations

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


def batch_rigid_transform(
    rot_mats: Float[Array, "b j 3 3"],
    joints: Float[Array, "b j 3"],
    parents: tuple[int, ...],
) -> tuple[Float[Array, "b j 3"], Float[Array, "b j 3 4"]]:
    """Forward kinematics (smplx/lbs.py: batch_rigid_transform).

    Returns the posed joints and the relative transforms A_i = [R^g_i | t^g_i - R^g_i J_i] as
    [b j 3 4] (the constant [0 0 0 1] row is never materialised). `parents` is static, so the
    chain is unrolled at trace time.
    """
    rel = joints - jnp.concatenate(
        [jnp.zeros_like(joints[:, :1]), joints[:, [max(p, 0) for p in parents[1:]]]], axis=1
    )
    rel = rel.at[:, 0].set(joints[:, 0])
    g_rot = [rot_mats[:, 0]]
    g_t = [rel[:, 0]]
    for i in range(1, len(parents)):
        p = parents[i]
        # G_i = G_p @ [[R_i, rel_i], [0, 1]]
        g_rot.append(g_rot[p] @ rot_mats[:, i])
        g_t.append(jnp.einsum("bkl,bl->bk", g_rot[p], rel[:, i]) + g_t[p])
    grot = jnp.stack(g_rot, axis=1)
    posed_joints = jnp.stack(g_t, axis=1)
    # Remove the rest-pose joint: t - R J (smplx pads J with a 0 and subtracts G @ [J; 0]).
    t = posed_joints - jnp.einsum("bjkl,bjl->bjk", grot, joints)
    return posed_joints, jnp.concatenate([grot, t[..., None]], axis=-1)


def skin(
    weights: Float[Array, "v j"],
    transforms: Float[Array, "b j 3 4"],
    v_posed: Float[Array, "b v 3"],
) -> Float[Array, "b v 3"]:
    """Blend the joint transforms per vertex as [b v 3 4] (weights @ A) and apply them."""
    b, j = transforms.shape[:2]
    t = jnp.einsum("vj,bjm->bvm", weights, transforms.reshape(b, j, 12))
    t = t.reshape(b, -1, 3, 4)
    return jnp.einsum("bvkl,bvl->bvk", t[..., :3], v_posed) + t[..., 3]


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

    Takes rotation matrices (smplx's pose2rot=False path). The rest joints are regressed from
    the template and the shape directions separately (J = Jr v_t + (Jr S) beta), which is the
    same linear map as Jr (v_t + S beta) without a [b v 3] x [j v] contraction.
    """
    b = betas.shape[0]
    v_shaped = v_template[None] + blend_shapes(betas, shapedirs)
    j_template = j_regressor @ v_template
    j_dirs = jnp.einsum("jv,vkl->jkl", j_regressor, shapedirs)
    joints = j_template[None] + jnp.einsum("bl,jkl->bjk", betas, j_dirs)
    eye = jnp.eye(3, dtype=rot_mats.dtype)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(b, -1)
    v_posed = v_shaped + (pose_feature @ posedirs).reshape(b, -1, 3)
    posed_joints, transforms = batch_rigid_transform(rot_mats, joints, parents)
    return skin(weights, transforms, v_posed), posed_joints


__all__ = ["blend_shapes", "vertices2joints", "batch_rigid_transform", "skin", "lbs"]
