"""The MPI-INF-3DHP builder, built with ``python -m siam_jax.data.prepare mpi_inf_3dhp`` from a
tiny official-format download (tests/fixtures_mpi_inf.py) and compared field by field with
values computed here."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax.body import keypoints as kp
from siam_jax.data import prepare, schema
from tests import fixtures_mpi_inf as fm
from tests import fixtures_official as fx

# The test set's 17 joints as 28-joint indices (mpii_get_joints 'relevant', 1-based
# 8 6 15 16 17 10 11 12 24 25 26 19 20 21 5 4 7), and where some must land (SPIN/ROMP rules).
TEST17 = [i - 1 for i in (8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7)]
EXPECTED = {
    "head_top": "lsp_head_top", "neck": "smpl_neck", "right_shoulder": "smpl_right_shoulder",
    "left_wrist": "smpl_left_wrist", "right_hip": "lsp_right_hip", "left_knee": "smpl_left_knee",
    "pelvis": "mpii_pelvis", "head": "h36m_head",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpi_inf")
    manual, data_dir = str(root / "manual"), str(root / "tfds")
    truth = fm.write_mpi_inf(manual)
    argv = ["prepare", "mpi_inf_3dhp", "--manual_dir", manual, "--data_dir", data_dir]
    assert prepare.main(argv) == 0
    summary = prepare.prepare("mpi_inf_3dhp", manual, data_dir, config="spin_neuralannot")
    return {"truth": truth, "manual": manual, "data_dir": data_dir, "summary": summary}


def _examples(built, config, split):
    src = tfds.data_source(f"mpi_inf_3dhp/{config}", data_dir=built["data_dir"], split=split)
    return [fx.as_arrays(src[i]) for i in range(len(src))]


def test_videos_in_order_every_tenth_frame(built):
    ex = _examples(built, "spin", "train")
    got = [(e["sequence_id"], int(e["frame_index"])) for e in ex]
    assert got == [(f"S1/Seq1/video_{c}", t) for c in (0, 1) for t in (0, 10, 20)]
    assert ex[1]["image_name"] == "S1/Seq1/imageFrames/video_0/frame_000011.jpg"
    val = _examples(built, "spin", "validation")
    assert [(e["sequence_id"], int(e["frame_index"])) for e in val] == [
        ("S8/Seq1/video_0", 0), ("S8/Seq1/video_0", 10)]  # fmt: skip
    meta = built["summary"]["metadata"]
    assert meta["videos_missing_train"] == 6  # cameras 2, 4-8 of the spin set not extracted
    assert meta["keypoints_reprojection_over_1px_train"] == 0


def test_seventeen_joints_by_name_and_projection_through_intrinsics(built):
    truth = built["truth"]
    for e in _examples(built, "spin", "train"):
        c, t = int(e["sequence_id"][-1]), int(e["frame_index"])
        cam = truth["cams"][(1, 1)][c]
        np.testing.assert_allclose(e["intrinsics"], cam["k"], rtol=1e-6)
        xyz28 = truth["annot3"][(1, 1)][c][t].reshape(28, 3) / 1000.0
        p = e["persons"]
        for joint, point in EXPECTED.items():
            j = kp.KEYPOINT_NAMES.index(point)
            assert p["keypoints_3d_visibility"][0, j] == 1, joint
            np.testing.assert_allclose(p["keypoints_3d"][0, j], xyz28[fm.NAMES28.index(joint)],
                                       atol=1e-5)  # fmt: skip
        # The 28-only joints (hands, toes) are not among the 17.
        for point in ("smpl_left_hand", "right_big_toe"):
            assert p["keypoints_3d_visibility"][0, kp.KEYPOINT_NAMES.index(point)] == 0
        assert int(p["keypoints_3d_visibility"][0].sum()) == 16  # 17 minus the unmapped spine
        vis = p["keypoints_2d_visibility"][0] > 0
        uv = fx.pinhole(p["keypoints_3d"][0][vis].astype(np.float64), cam["k"])
        np.testing.assert_allclose(p["keypoints_2d"][0][vis], uv, atol=1e-3)
        uv28 = truth["annot2"][(1, 1)][c][t].reshape(28, 2)
        j = kp.KEYPOINT_NAMES.index("lsp_head_top")
        if vis[j]:
            np.testing.assert_allclose(p["keypoints_2d"][0, j], uv28[TEST17[0]], atol=1e-3)
        assert e["all_persons_annotated"] and not p["has_smpl"][0]


def test_neuralannot_world_fit_round_trips_through_the_extrinsic(built):
    truth, model = built["truth"], built["truth"]["model"]
    for e in _examples(built, "spin_neuralannot", "train"):
        c, t = int(e["sequence_id"][-1]), int(e["frame_index"])
        p = e["persons"]
        if t != 0:  # frame 10: skeleton 1.3x (rejected); frame 20: no fit
            assert p["smpl_source"][0] == 0 and not p["has_pose"][0]
            continue
        cam = truth["cams"][(1, 1)][c]
        fit = truth["fits"]["1"]["1"][str(t)]
        world = fx._run(
            model,
            np.asarray(fit["shape"])[None],
            np.asarray(fit["pose"][3:]).reshape(1, 23, 3),
            np.asarray(fit["pose"][:3])[None],
            np.asarray(fit["trans"]).reshape(1, 3),
        )
        stored = fx._run(model, p["betas"][:1], p["body_pose"][:1], p["global_orient"][:1],
                         p["transl"][:1])  # fmt: skip
        expected = world["vertices"][0] @ cam["R"].T + cam["T_mm"] / 1000.0
        np.testing.assert_allclose(stored["vertices"][0], expected, atol=2e-5)
        assert p["smpl_source"][0] == schema.SMPL_SOURCES.index("neuralannot")
        assert p["has_pose"][0] and p["has_betas"][0] and p["has_transl"][0] and p["has_3d"][0]
    meta = built["summary"]["metadata"]
    assert meta["fits_attached_train"] == 2 and meta["fits_rejected_error_train"] == 2
    assert meta["fits_missing_train"] == 2 and meta["fit_error_mm_validation"]["max"] < 0.01


def test_bad_annot_and_calibration_name_the_file_and_leave_nothing(built, tmp_path):
    manual = shutil.copytree(built["manual"], str(tmp_path / "manual"))
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("pre-existing")
    before = fx.file_tree(str(data_dir))
    mat = os.path.join(manual, "S8", "Seq1", "annot.mat")  # validation: train is written first
    with open(mat, "rb") as f:
        raw = f.read()
    with open(mat, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"S8/Seq1/annot\.mat: unreadable annot\.mat"):
        prepare.prepare("mpi_inf_3dhp", manual, str(data_dir))
    assert fx.file_tree(str(data_dir)) == before
    with open(mat, "wb") as f:
        f.write(raw)
    calib = os.path.join(manual, "S1", "Seq1", "camera.calibration")
    with open(calib) as f:
        lines = f.read().splitlines()
    with open(calib, "w") as f:
        f.write("\n".join(lines[:-7]) + "\n")  # 13 cameras
    with pytest.raises(
        ValueError, match=r"Seq1/camera\.calibration: 13 cameras, but .*annot\.mat has 14"
    ):
        prepare.prepare("mpi_inf_3dhp", manual, str(data_dir))
    assert fx.file_tree(str(data_dir)) == before


def test_calibration_parse_matches_spin_fixed_lines(tmp_path):
    """SPIN's read_calibration reads line 7c+5 / 7c+6 from character 11: the same matrices."""
    from siam_jax.data.builders.mpi_inf_3dhp import read_calibration

    cams = fm.cameras(np.random.default_rng(0), n=3)
    path = tmp_path / "camera.calibration"
    path.write_text(fm.calibration_text(cams))
    content = path.read_text().splitlines(keepends=True)
    parsed = read_calibration(str(path))
    assert len(parsed) == 3
    for c, cam in enumerate(parsed):
        k = np.array([float(v) for v in content[c * 7 + 5][11:-2].split()]).reshape(4, 4)
        rt = np.array([float(v) for v in content[c * 7 + 6][11:-2].split()]).reshape(4, 4)
        np.testing.assert_allclose(cam["k"], k[:3, :3])
        np.testing.assert_allclose(cam["R"], rt[:3, :3])
        np.testing.assert_allclose(cam["t"], rt[:3, 3] / 1000.0)


def test_all_28_keeps_every_frame_and_the_hands_and_toes(built, tmp_path):
    data_dir = str(tmp_path / "tfds")
    summary = prepare.prepare("mpi_inf_3dhp", built["manual"], data_dir, config="all_28")
    assert summary["splits"] == {"train": 2 * 21, "validation": 11}
    assert summary["metadata"]["videos_missing_train"] == 12  # 14 cameras, 2 extracted
    src = tfds.data_source("mpi_inf_3dhp/all_28", data_dir=data_dir, split="train")
    e = fx.as_arrays(src[22])
    assert (e["sequence_id"], int(e["frame_index"])) == ("S1/Seq1/video_1", 1)
    xyz28 = built["truth"]["annot3"][(1, 1)][1][1].reshape(28, 3) / 1000.0
    p = e["persons"]
    # ROMP's MPI_INF_28 map: hands -> SMPL hands, toes -> big toes, clavicles / spine / feet none.
    for joint, point in (("left_hand", "smpl_left_hand"), ("right_toe", "right_big_toe"),
                         ("head_top", "lsp_head_top")):  # fmt: skip
        j = kp.KEYPOINT_NAMES.index(point)
        np.testing.assert_allclose(p["keypoints_3d"][0, j], xyz28[fm.NAMES28.index(joint)],
                                   atol=1e-5)  # fmt: skip
    assert int(p["keypoints_3d_visibility"][0].sum()) == 28 - 8  # 4 spine, 2 clavicles, 2 feet
