"""Small stand-ins for the trainer tests: a tiny NNX model that speaks the output vocabulary, a tiny
body model, deterministic resumable batch iterators, and a config. They keep the sharding,
resume and guard-rail tests fast (seconds to compile); the real model runs in
``test_train_e2e.py``. No tests here; subprocess scripts import this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.models.siam import BodyConstant

K, J, V = 2, 24, 40  # slots, SMPL joints, vertices of the fake body
INPUT = 32  # input size; feature stride 8 -> 4x4 cells


def rodrigues(aa):
    """Axis-angle [..., 3] -> rotation matrix [..., 3, 3] (Rodrigues' formula)."""
    theta = jnp.sqrt(jnp.sum(aa * aa, axis=-1, keepdims=True) + 1e-12)
    k = aa / theta
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = jnp.zeros_like(kx)
    km = jnp.stack([z, -kz, ky, kz, z, -kx, -ky, kx, z], -1).reshape(*aa.shape[:-1], 3, 3)
    s, c = jnp.sin(theta)[..., None], jnp.cos(theta)[..., None]
    eye = jnp.eye(3, dtype=aa.dtype)
    return eye + s * km + (1 - c) * (km @ km)


def rot6d(x):
    """6D (first two columns, row-major 3x2) -> rotation matrix (Gram-Schmidt)."""
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = a1 / jnp.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - jnp.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = b2 / jnp.linalg.norm(b2, axis=-1, keepdims=True)
    b3 = jnp.cross(b1, b2)
    return jnp.stack([b1, b2, b3], axis=-1)


@dataclasses.dataclass
class FakeBodyOutput:
    vertices: jax.Array
    joints: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class FakeBody:
    """SMPL-shaped toy: template + shape blend + pose blend (207 inputs), rotated about joint 0."""

    v_template: jax.Array
    shapedirs: jax.Array
    posedirs: jax.Array
    J_regressor: jax.Array
    # what ``body.body_model_digest`` reads beside the above (the fake poses with none of them)
    weights: jax.Array
    faces: jax.Array
    parents: tuple = dataclasses.field(default=tuple(range(-1, J - 1)), metadata={"static": True})
    h36m_regressor = None  # class attribute, not a field

    @classmethod
    def make(cls, seed=0):
        r = np.random.default_rng(seed)
        return cls(
            v_template=jnp.asarray(r.normal(size=(V, 3)) * 0.3, jnp.float32),
            shapedirs=jnp.asarray(r.normal(size=(V, 3, 10)) * 0.02, jnp.float32),
            posedirs=jnp.asarray(r.normal(size=(207, V * 3)) * 0.02, jnp.float32),
            J_regressor=jnp.asarray(r.dirichlet(np.ones(V), size=J), jnp.float32),
            weights=jnp.asarray(r.dirichlet(np.ones(J), size=V), jnp.float32),
            faces=jnp.asarray(r.integers(0, V, size=(8, 3)), jnp.int32),
        )

    def __call__(self, betas, body_pose, global_orient, transl=None):
        if body_pose.shape[-2] == 23:  # axis-angle [... 23 3], else matrices [... 23 3 3]
            body_pose = rodrigues(body_pose)
        if global_orient.ndim == betas.ndim:  # axis-angle [... 3], else [... 1 3 3]
            global_orient = rodrigues(global_orient)
        global_orient = global_orient.reshape(*betas.shape[:-1], 3, 3)
        v = self.v_template + jnp.einsum("...l,vcl->...vc", betas, self.shapedirs)
        feat = (body_pose - jnp.eye(3)).reshape(*betas.shape[:-1], 207)
        v = v + (feat @ self.posedirs).reshape(*betas.shape[:-1], V, 3)
        j0 = jnp.einsum("jv,...vc->...jc", self.J_regressor[:1], v)
        v = jnp.einsum("...ij,...vj->...vi", global_orient, v - j0) + j0
        if transl is not None:
            v = v + transl[..., None, :]
        return FakeBodyOutput(v, jnp.einsum("jv,...vc->...jc", self.J_regressor, v))


class FakeSIAM(nnx.Module):
    """Conv -> BatchNorm -> heatmap; tokens at the GT cells -> SMPL parameters; fake body."""

    def __init__(
        self, body: FakeBody, *, rngs: nnx.Rngs, dropout: float = 0.1, batch_norm: bool = True
    ):
        self.conv = nnx.Conv(3, 8, (8, 8), strides=(8, 8), rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs) if batch_norm else None
        self.head = nnx.Conv(8, 1, (1, 1), rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        self.reg = nnx.Linear(8, 24 * 6 + 10 + 3, rngs=rngs)
        self.body = BodyConstant(body)  # as the real SIAM holds it: not trained, not saved

    def __call__(self, images, *, gt_center_cells, gt_valid, intrinsics, return_aux=False):
        b, t = images.shape[:2]
        x = images.reshape(b * t, *images.shape[2:])
        f = self.conv(x)
        f = nnx.relu(self.bn(f) if self.bn is not None else f)
        heat = jax.nn.sigmoid(self.head(f)[..., 0]).reshape(b, t, *f.shape[1:3])
        f = f.reshape(b, t, *f.shape[1:])
        cx, cy = gt_center_cells[..., 0], gt_center_cells[..., 1]
        tok = jax.vmap(jax.vmap(lambda fm, y, x: fm[y, x]))(f, cy, cx)  # [b t k c]
        tok = self.drop(tok)
        out = self.reg(tok)
        ident = jnp.tile(jnp.array([1.0, 0, 0, 1, 0, 0]), 24)
        rot = rot6d((out[..., :144] + ident).reshape(b, t, K, 24, 6))
        betas = out[..., 144:154]
        cam = out[..., 154:] + jnp.array([0.0, 0.0, 3.0])
        bo = self.body.get_value()(
            betas=betas, body_pose=rot[..., 1:, :, :], global_orient=rot[..., :1, :, :]
        )
        verts = bo.vertices + cam[..., None, :]
        kp3d = bo.joints + cam[..., None, :]
        fx = intrinsics[:, :, None, None, 0, 0]
        cxy = intrinsics[:, :, None, None, :2, 2]
        kp2d = fx[..., None] * kp3d[..., :2] / kp3d[..., 2:3] + cxy
        outputs = {
            "center_heatmap": heat,
            "scores": jnp.ones((b, t, K)),
            "valid": gt_valid,
            "centers": gt_center_cells.astype(jnp.float32) * 8.0,
            "pred_smpl_params": {
                "global_orient": rot[..., :1, :, :],
                "body_pose": rot[..., 1:, :, :],
                "betas": betas,
            },
            "pred_cam": cam,
            "pred_cam_t": cam,
            "pred_vertices": verts,
            "pred_keypoints_3d": kp3d,
            "pred_keypoints_2d": kp2d,
        }
        aux = {"fd_decorrelation": jnp.mean(jnp.square(tok))}
        return (outputs, aux) if return_aux else outputs


def make_batch(
    index: int, batch_size: int, seed: int = 0, body=None, input_size: int = INPUT, k: int = K
) -> dict:
    """A deterministic global batch (docs/architecture.md "Batches"), t = 1."""
    r = np.random.default_rng([seed, index])
    b, t, hw = batch_size, 1, input_size // 8
    body = body or FakeBody.make()
    betas = r.normal(size=(b, t, k, 10)).astype(np.float32) * 0.5
    go = r.normal(size=(b, t, k, 3)).astype(np.float32) * 0.3
    bp = r.normal(size=(b, t, k, 23, 3)).astype(np.float32) * 0.2
    transl = np.concatenate(
        [r.normal(size=(b, t, k, 2)) * 0.3, 3 + r.uniform(size=(b, t, k, 1))], -1
    ).astype(np.float32)
    out = body(
        betas=jnp.asarray(betas),
        body_pose=jnp.asarray(bp),
        global_orient=jnp.asarray(go),
        transl=jnp.asarray(transl),
    )
    j3d = np.asarray(out.joints[..., :J, :])
    f = 40.0
    c = input_size / 2 - 0.5
    kmat = np.array([[f, 0, c], [0, f, c], [0, 0, 1]], np.float32)
    j2d = f * j3d[..., :2] / j3d[..., 2:3] + c
    cells = r.integers(0, hw, size=(b, t, k, 2)).astype(np.int32)
    heat = np.zeros((b, t, hw, hw), np.float32)
    valid = np.ones((b, t, k), bool)
    valid[::2, :, 1] = False  # some empty slots
    for i in range(b):
        for slot in range(k):
            if valid[i, 0, slot]:
                heat[i, 0, cells[i, 0, slot, 1], cells[i, 0, slot, 0]] = 1.0
    has = np.ones((b, t, k), bool)
    return {
        "image": r.uniform(size=(b, t, input_size, input_size, 3)).astype(np.float32),
        "intrinsics": np.broadcast_to(kmat, (b, t, 3, 3)).copy(),
        "center_heatmap": heat,
        "center_cells": cells,
        "person_valid": valid,
        "betas": betas,
        "global_orient": go,
        "body_pose": bp,
        "transl": transl,
        "joints_3d": j3d.astype(np.float32),
        "joints_2d": j2d.astype(np.float32),
        "visibility": (r.uniform(size=(b, t, k, J)) > 0.2).astype(np.float32),
        "has_smpl": has,
        "has_3d": has.copy(),
        "has_2d": has.copy(),
        "batch_valid": np.ones((b,), bool),
        **schema2_defaults(b, t, k, hw, has),
    }


def schema2_defaults(b: int, t: int, k: int, hw: int, has: np.ndarray) -> dict:
    """The schema-2 batch fields of a fully SMPL-annotated fake batch (every SMPL term supervised,
    no dataset keypoints, fully annotated frames without don't-care cells)."""
    from siam_jax.data import schema

    nk = schema.NUM_KEYPOINTS
    return {
        "center_ignore": np.zeros((b, t, hw, hw), bool),
        "all_persons_annotated": np.ones((b, t), bool),
        "joints_h36m_3d": np.zeros((b, t, k, 17, 3), np.float32),
        "h36m_visibility": np.zeros((b, t, k, 17), np.float32),
        "keypoints_3d": np.zeros((b, t, k, nk, 3), np.float32),
        "keypoints_3d_visibility": np.zeros((b, t, k, nk), np.float32),
        "keypoints_2d": np.zeros((b, t, k, nk, 2), np.float32),
        "keypoints_2d_visibility": np.zeros((b, t, k, nk), np.float32),
        **{f: has.copy() for f in ("has_pose", "has_global_orient", "has_betas", "has_transl")},
        **{f: np.zeros_like(has) for f in ("has_h36m", "has_keypoints_3d", "has_keypoints_2d")},
    }


class FakeIterator:
    """Resumable iterator of this process's rows of deterministic global batches."""

    def __init__(self, config, process_index=0, process_count=1, limit=None, hook=None):
        self.global_batch = int(config.batch_size)
        self.seed = int(config.seed)
        self.pi, self.pc = process_index, process_count
        self.index = 0
        self.limit = limit
        self.hook = hook  # called with the index of the batch about to be produced

    def __iter__(self):
        return self

    def __next__(self):
        if self.limit is not None and self.index >= self.limit:
            raise StopIteration
        if self.hook is not None:
            self.hook(self.index)
        g = make_batch(self.index, self.global_batch, self.seed)
        self.index += 1
        n = self.global_batch // self.pc
        return {k: v[self.pi * n : (self.pi + 1) * n] for k, v in g.items()}

    def get_state(self):
        return {"index": self.index}

    def set_state(self, state):
        self.index = int(state["index"])


def fake_hooks():
    body = FakeBody.make()
    return dict(
        build_model=lambda config, rngs: FakeSIAM(body, rngs=rngs),
        body_model=body,
        make_train_iterator=lambda config, pi, pc: FakeIterator(config, pi, pc),
        make_eval_iterator=lambda config, pi, pc: FakeIterator(
            dict_config(config, seed=1000), pi, pc, limit=2
        ),
    )


def dict_config(config, **overrides):
    c = config.copy_and_resolve_references()
    c.unlock()
    for k, v in overrides.items():
        c[k] = v
    return c


def fake_config(**overrides):
    """The default config shrunk for the fakes; ``overrides`` on top (dotted names allowed)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from configs import default

    c = default.get_config()
    c.model.input_size = INPUT
    c.model.max_instances = K
    c.model.clip_len = 1
    c.batch_size = 4
    c.total_steps = 6
    c.log_every_steps = 1
    c.checkpoint_every_steps = 2
    c.eval_every_steps = 1000
    c.optimizer.warmup_steps = 2
    c.optimizer.learning_rate = 1e-2
    for k, v in overrides.items():
        node = c
        *parents, leaf = k.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = v
    return c


def run_fake_training(workdir, overrides_json="{}", action="none"):
    """Entry for subprocess tests: trains the fake model.

    ``action``: ``none``, ``kill:N`` (SIGKILL itself when batch N is requested, once a checkpoint
    is committed), ``term:N`` (SIGTERM itself when batch N is requested) or ``term0:N`` (the
    same, in process 0 only).
    """
    import signal
    import time

    from siam_jax.training import loop

    loop.maybe_initialize_distributed()  # before the fake body touches a device
    config = fake_config(**json.loads(overrides_json))
    hooks = fake_hooks()
    if action != "none":
        kind, at = action.split(":")
        at = int(at)
        ckdir = os.path.join(workdir, "checkpoints")

        def hook(index):
            if index != at:
                return
            if kind == "kill":
                # wait until a checkpoint is committed, then die without any cleanup
                for _ in range(600):
                    if any(d.isdigit() for d in os.listdir(ckdir)):
                        break
                    time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGKILL)
            elif kind == "term" or jax.process_index() == 0:  # term0: only process 0
                os.kill(os.getpid(), signal.SIGTERM)

        hooks["make_train_iterator"] = lambda config, pi, pc: FakeIterator(
            config, pi, pc, hook=hook
        )
    return loop.train_and_evaluate(config, workdir, **hooks)


if __name__ == "__main__":
    run_fake_training(*sys.argv[1:])
