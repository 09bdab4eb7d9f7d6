"""`BodyModel`: the SMPL arrays as a pytree, and its forward pass."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, Int

from siam_jax.body import joint_sets, lbs, rotations


class BodyOutput(NamedTuple):
    """Posed mesh: vertices [... v 3], kinematic joints [... 24 3], smplx's 45-joint set."""

    vertices: Float[Array, "... v 3"]
    joints: Float[Array, "... 24 3"]
    joints45: Float[Array, "... 45 3"]


@struct.dataclass
class BodyModel:
    """SMPL arrays in smplx's layout (docs/architecture.md, "siam_jax.body").

    v_template [v 3], shapedirs [v 3 nb], posedirs [207 v*3], J_regressor [24 v], weights [v 24],
    faces [f 3] int32, optional h36m_regressor [17 v] and sym_idx [v]; `parents` is static.
    """

    v_template: Float[Array, "v 3"]
    shapedirs: Float[Array, "v 3 nb"]
    posedirs: Float[Array, "p v3"]
    J_regressor: Float[Array, "24 v"]
    weights: Float[Array, "v 24"]
    faces: Int[Array, "f 3"]
    h36m_regressor: Float[Array, "17 v"] | None = None
    sym_idx: Int[Array, " v"] | None = None
    parents: tuple[int, ...] = struct.field(pytree_node=False, default=joint_sets.SMPL_PARENTS)

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def dtype(self):
        return self.v_template.dtype

    def astype(self, dtype) -> BodyModel:
        """The same model with its float arrays cast to `dtype` (e.g. float64 under x64)."""
        cast = {
            k: (None if getattr(self, k) is None else jnp.asarray(getattr(self, k), dtype))
            for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                      "h36m_regressor")
        }  # fmt: skip
        return self.replace(**cast)

    # ------------------------------------------------------------------ forward
    def __call__(
        self,
        betas: Float[Array, "... nb"],
        body_pose: Float[Array, "... 23 3"] | Float[Array, "... 23 3 3"],
        global_orient: Float[Array, "... 3"] | Float[Array, "... 1 3 3"],
        transl: Float[Array, "... 3"] | None = None,
    ) -> BodyOutput:
        """Posed vertices and joints, as smplx.SMPL.forward (PROTOCOLS.md 5.2).

        body_pose: [..., 23, 3] axis-angle, [..., 69] axis-angle or [..., 23, 3, 3] matrices;
        global_orient: [..., 3] axis-angle or [..., 1, 3, 3] / [..., 3, 3] matrices (the batch
        rank of body_pose resolves [3, 3]; see _global_orient_to_matrix). Leading
        shapes broadcast against each other. betas may have fewer entries than num_betas.
        Runs as one jitted program (inlined when called inside an outer jit), so eager calls
        compile once per input shape instead of op by op.
        """
        return _forward(self, betas, body_pose, global_orient, transl)

    def _forward(self, betas, body_pose, global_orient, transl) -> BodyOutput:
        body_rot, body_batch_ndim, body_is_matrix = _body_pose_to_matrix(body_pose)
        root_rot = _global_orient_to_matrix(global_orient, body_batch_ndim, body_is_matrix)
        betas = jnp.asarray(betas)
        if betas.shape[-1] > self.num_betas:
            raise ValueError(
                f"betas has {betas.shape[-1]} entries but the model has {self.num_betas} "
                "shape directions"
            )
        dtype = jnp.result_type(self.v_template.dtype, betas.dtype, body_rot.dtype)
        shapes = [betas.shape[:-1], body_rot.shape[:-3], root_rot.shape[:-3]]
        if transl is not None:
            transl = jnp.asarray(transl)
            if transl.shape[-1:] != (3,):
                raise ValueError(f"transl must be [..., 3], got {transl.shape}")
            shapes.append(transl.shape[:-1])
        batch = jnp.broadcast_shapes(*shapes)
        n = math.prod(batch)
        rot = jnp.concatenate(
            [
                jnp.broadcast_to(root_rot, (*batch, 1, 3, 3)),
                jnp.broadcast_to(body_rot, (*batch, 23, 3, 3)),
            ],
            axis=-3,
        ).reshape(n, 24, 3, 3)
        nb = betas.shape[-1]
        flat_betas = jnp.broadcast_to(betas, (*batch, nb)).reshape(n, nb)
        verts, joints = lbs.lbs(
            flat_betas.astype(dtype),
            rot.astype(dtype),
            self.v_template.astype(dtype),
            self.shapedirs[..., :nb].astype(dtype),
            self.posedirs.astype(dtype),
            self.J_regressor.astype(dtype),
            self.parents,
            self.weights.astype(dtype),
        )
        extra = verts[:, jnp.asarray(joint_sets.EXTRA_JOINT_VERTEX_IDS)]
        joints45 = jnp.concatenate([joints, extra], axis=1)
        if transl is not None:
            t = jnp.broadcast_to(transl, (*batch, 3)).reshape(n, 1, 3).astype(dtype)
            verts, joints, joints45 = verts + t, joints + t, joints45 + t
        nv = verts.shape[1]
        return BodyOutput(
            vertices=verts.reshape(*batch, nv, 3),
            joints=joints.reshape(*batch, 24, 3),
            joints45=joints45.reshape(*batch, 45, 3),
        )

    # ---------------------------------------------------------- other joint sets
    def regress_h36m(self, vertices: Float[Array, "... v 3"]) -> Float[Array, "... 17 3"]:
        """H36M-17 joints from vertices (rows named in joint_sets.H36M_JOINT_NAMES)."""
        if self.h36m_regressor is None:
            raise ValueError(
                "this body model has no H36M regressor: pass h36m_regressor_path "
                "(SPIN's data/J_regressor_h36m.npy) to get_body_model/load_body_model"
            )
        return jnp.einsum("...vk,jv->...jk", vertices, self.h36m_regressor.astype(vertices.dtype))

    def regress_lsp(self, vertices: Float[Array, "... v 3"]) -> Float[Array, "... 14 3"]:
        """LSP-14 joints: the H36M regressor rows H36M_TO_J14 (SPIN constants.py)."""
        return self.regress_h36m(vertices)[..., joint_sets.H36M_TO_J14, :]

    def regress_joints(self, vertices: Float[Array, "... v 3"]) -> Float[Array, "... 24 3"]:
        """The model's own J_regressor applied to (posed) vertices."""
        return jnp.einsum("...vk,jv->...jk", vertices, self.J_regressor.astype(vertices.dtype))


_forward = jax.jit(BodyModel._forward)


def _body_pose_to_matrix(body_pose) -> tuple[Array, int, bool]:
    """Rotation matrices [..., 23, 3, 3], the batch ndim, and whether the input was matrices."""
    body_pose = jnp.asarray(body_pose)
    if body_pose.shape[-3:] == (23, 3, 3):
        return body_pose, body_pose.ndim - 3, True
    if body_pose.shape[-2:] == (23, 3):
        return rotations.axis_angle_to_matrix(body_pose), body_pose.ndim - 2, False
    if body_pose.shape[-1:] == (69,):
        aa = body_pose.reshape(*body_pose.shape[:-1], 23, 3)
        return rotations.axis_angle_to_matrix(aa), body_pose.ndim - 1, False
    raise ValueError(
        f"body_pose must be [..., 23, 3] axis-angle, [..., 69] or [..., 23, 3, 3] rotation "
        f"matrices, got shape {body_pose.shape}"
    )


def _global_orient_to_matrix(global_orient, body_batch_ndim: int, body_is_matrix: bool) -> Array:
    """[..., 1, 3, 3] matrices from [..., 3] axis-angle or [..., 1, 3, 3] / [..., 3, 3] matrices.

    A [3, 3] array is ambiguous (three axis-angles or one matrix): the batch rank of body_pose
    decides, and when broadcasting hides it, global_orient takes the same form as body_pose.
    """
    g = jnp.asarray(global_orient)
    is_mat_1 = g.ndim >= 3 and g.shape[-3:] == (1, 3, 3)
    is_mat = g.ndim >= 2 and g.shape[-2:] == (3, 3)
    is_aa = g.shape[-1:] == (3,)
    if is_aa and g.ndim == body_batch_ndim + 1:
        pass
    elif is_mat_1 and g.ndim == body_batch_ndim + 3:
        return g
    elif is_mat and g.ndim == body_batch_ndim + 2:
        return g[..., None, :, :]
    elif body_is_matrix and is_mat_1:
        return g
    elif body_is_matrix and is_mat:
        return g[..., None, :, :]
    if is_aa:
        return rotations.axis_angle_to_matrix(g)[..., None, :, :]
    raise ValueError(
        f"global_orient must be [..., 3] axis-angle or [..., 1, 3, 3] rotation matrices, "
        f"got shape {g.shape}"
    )


def check_model_arrays(arrays: dict[str, np.ndarray], source: str) -> None:
    """Raise a ValueError naming `source` and the key when an SMPL array has a wrong shape."""
    v = arrays["v_template"].shape[0]
    expected = {
        "v_template": (v, 3),
        "posedirs": (207, v * 3),
        "J_regressor": (24, v),
        "weights": (v, 24),
    }
    for key, shape in expected.items():
        if tuple(arrays[key].shape) != shape:
            raise ValueError(f"{source}: '{key}' has shape {arrays[key].shape}, expected {shape}")
    sd = arrays["shapedirs"]
    if sd.ndim != 3 or sd.shape[:2] != (v, 3):
        raise ValueError(f"{source}: 'shapedirs' has shape {sd.shape}, expected ({v}, 3, nb)")
    f = arrays["faces"]
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"{source}: 'f' (faces) has shape {f.shape}, expected (F, 3)")
    if arrays.get("h36m_regressor") is not None and arrays["h36m_regressor"].shape != (17, v):
        raise ValueError(
            f"{source}: 'h36m_regressor' has shape {arrays['h36m_regressor'].shape}, "
            f"expected (17, {v})"
        )


def body_model_from_arrays(arrays: dict[str, np.ndarray], source: str = "arrays") -> BodyModel:
    """Build a float32 BodyModel from numpy arrays in the BodyModel layout (checked)."""
    check_model_arrays(arrays, source)
    parents = tuple(int(p) for p in arrays.get("parents", joint_sets.SMPL_PARENTS))
    h36m = arrays.get("h36m_regressor")
    sym = arrays.get("sym_idx")
    return BodyModel(
        v_template=jnp.asarray(arrays["v_template"], jnp.float32),
        shapedirs=jnp.asarray(arrays["shapedirs"], jnp.float32),
        posedirs=jnp.asarray(arrays["posedirs"], jnp.float32),
        J_regressor=jnp.asarray(arrays["J_regressor"], jnp.float32),
        weights=jnp.asarray(arrays["weights"], jnp.float32),
        faces=jnp.asarray(arrays["faces"], jnp.int32),
        h36m_regressor=None if h36m is None else jnp.asarray(h36m, jnp.float32),
        sym_idx=None if sym is None else jnp.asarray(sym, jnp.int32),
        parents=parents,
    )
