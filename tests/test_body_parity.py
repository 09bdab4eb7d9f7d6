"""Parity with smplx (PyTorch): vertices, the 24 kinematic joints and the 45-joint set."""

import numpy as np
import pytest

from siam_jax import body
from siam_jax.body import rotations

torch = pytest.importorskip("torch")
smplx = pytest.importorskip("smplx")

pytestmark = pytest.mark.reference
V = 6890


class _Struct:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _random_smplx_npz(path, rng):
    """A random but valid model in smplx's layout, written with the official key names."""
    jr = np.zeros((24, V))
    for j in range(24):
        idx = rng.choice(V, 12, replace=False)
        jr[j, idx] = rng.dirichlet(np.ones(12))
    w = rng.dirichlet(np.ones(24) * 0.3, size=V)
    kintree = np.stack([np.array(body.joint_sets.SMPL_PARENTS), np.arange(24)])
    kintree[0, 0] = 4294967295
    np.savez(
        path,
        v_template=rng.normal(size=(V, 3)) * 0.3,
        shapedirs=rng.normal(size=(V, 3, 10)) * 0.02,
        posedirs=rng.normal(size=(V, 3, 207)) * 0.005,
        J_regressor=jr,
        weights=w,
        kintree_table=kintree,
        f=rng.integers(0, V, size=(13776, 3)),
    )


def _smplx_from_npz(path):
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    return smplx.SMPL(model_path=str(path), data_struct=_Struct(**data), num_betas=10)


def _random_inputs(rng, b):
    betas = (2.0 * rng.normal(size=(b, 10))).astype(np.float32)
    pose = rng.normal(size=(b, 24, 3))
    axis = pose / np.linalg.norm(pose, axis=-1, keepdims=True)
    angle = rng.uniform(0, np.pi, size=(b, 24, 1))
    angle[: b // 2, ::3] = np.pi - rng.uniform(0, 1e-3, size=(b // 2, 8, 1))  # near pi
    angle[-1] = 0.0  # exactly zero pose in the last row
    pose = (axis * angle).astype(np.float32)
    transl = rng.normal(size=(b, 3)).astype(np.float32)
    return betas, pose, transl


@pytest.mark.parametrize("which", ["random", "procedural"])
def test_parity_with_smplx(tmp_path, which):
    rng = np.random.default_rng(0)
    path = tmp_path / "model.npz"
    if which == "random":
        _random_smplx_npz(path, rng)
    else:
        body.save_body_model(body.make_procedural_body_model(0), path)
    ours = body.load_body_model(path)
    ref = _smplx_from_npz(path)
    b = 8
    betas, pose, transl = _random_inputs(rng, b)
    with torch.no_grad():
        out_ref = ref(
            betas=torch.from_numpy(betas),
            body_pose=torch.from_numpy(pose[:, 1:].reshape(b, 69)),
            global_orient=torch.from_numpy(pose[:, 0]),
            transl=torch.from_numpy(transl),
        )
        mats = rotations.axis_angle_to_matrix(pose)
        out_ref_mat = ref(
            betas=torch.from_numpy(betas),
            body_pose=torch.from_numpy(np.array(mats[:, 1:])),
            global_orient=torch.from_numpy(np.array(mats[:, :1])),
            transl=torch.from_numpy(transl),
            pose2rot=False,
        )
    out = ours(betas, pose[:, 1:], pose[:, 0], transl)
    out_mat = ours(betas, mats[:, 1:], mats[:, :1], transl)
    for mine, theirs in ((out, out_ref), (out_mat, out_ref_mat)):
        np.testing.assert_allclose(mine.vertices, theirs.vertices.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(mine.joints, theirs.joints[:, :24].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(mine.joints45, theirs.joints.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(ours.faces, ref.faces.astype(np.int32))


def test_rodrigues_matches_smplx():
    from smplx.lbs import batch_rodrigues

    rng = np.random.default_rng(1)
    aa = rng.normal(size=(64, 3)).astype(np.float32) * 2
    aa[:8] = aa[:8] / np.linalg.norm(aa[:8], axis=-1, keepdims=True) * np.pi
    aa[8:12] *= 1e-6
    with torch.no_grad():
        ref = batch_rodrigues(torch.from_numpy(aa)).numpy()
    np.testing.assert_allclose(rotations.axis_angle_to_matrix(aa), ref, atol=2e-6)
