"""The Human3.6M builder, built with ``python -m siam_jax.data.prepare h36m`` from a tiny json
quartet (tests/fixtures_h36m.py) and compared field by field with values computed here."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax.body import keypoints as kp
from siam_jax.data import prepare, schema
from tests import fixtures_h36m as fh
from tests import fixtures_official as fx

SEQ1 = "s_01_act_02_subact_01_ca_01"
SEQ2 = "s_01_act_02_subact_01_ca_02"
# H36M-17 json order (I2L Human36M.py) -> the J_regressor_h36m row of the same index: written out
# here, not read from siam_jax.body.keypoints.
H36M_POINTS = [f"h36m17_{n}" for n in (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "spine", "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist")]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m")
    manual, data_dir = str(root / "manual"), str(root / "tfds")
    truth = fh.write_h36m(manual)
    status = prepare.main(["prepare", "h36m", "--manual_dir", manual, "--data_dir", data_dir])
    assert status == 0
    with open(os.path.join(data_dir, "h36m", "neuralannot", "1.0.0", "prepare_summary.json")) as f:
        summary = json.load(f)
    return {"truth": truth, "manual": manual, "data_dir": data_dir, "summary": summary}


def _examples(built, split):
    src = tfds.data_source("h36m/neuralannot", data_dir=built["data_dir"], split=split)
    return [fx.as_arrays(src[i]) for i in range(len(src))]


def _camera(truth, subject, cam):
    c = truth["cameras"][subject][str(cam)]
    k = np.array([[c["f"][0], 0, c["c"][0]], [0, c["f"][1], c["c"][1]], [0, 0, 1.0]])
    return np.asarray(c["R"]), np.asarray(c["t"]) / 1000.0, k


def test_sequences_in_order_with_subsampled_frames(built):
    ex = _examples(built, "train")
    got = [(e["sequence_id"], int(e["frame_index"])) for e in ex]
    # Camera 2 frame 10 has no image file.
    assert got == [(SEQ1, 0), (SEQ1, 5), (SEQ1, 10), (SEQ2, 0), (SEQ2, 5)]
    for seq in (SEQ1, SEQ2):
        frames = [f for s, f in got if s == seq]
        assert np.all(np.diff(frames) == 5)  # consecutive on the every-5th grid
    val = _examples(built, "validation")
    assert [(e["sequence_id"], int(e["frame_index"])) for e in val] == [
        ("s_09_act_02_subact_01_ca_04", 0), ("s_09_act_02_subact_01_ca_04", 64)]  # fmt: skip
    meta = built["summary"]["metadata"]
    assert meta["images_missing_train"] == 1 and meta["sequences_train"] == 2
    assert meta["stride_train"] == 5 and meta["stride_validation"] == 64
    assert meta["subjects_train"] == ["S1", "S5", "S6", "S7", "S8"]
    assert built["summary"]["splits"] == {"train": 5, "validation": 2}


def test_joints_moved_into_the_camera_and_projected(built):
    truth = built["truth"]
    for e in _examples(built, "train"):
        cam = 1 if e["sequence_id"] == SEQ1 else 2
        r, t, k = _camera(truth, 1, cam)
        np.testing.assert_allclose(e["intrinsics"], k, rtol=1e-6)
        world = np.asarray(truth["joints"][1][str(e["frame_index"])]) / 1000.0
        cam_joints = world @ r.T + t
        p = e["persons"]
        np.testing.assert_allclose(p["joints_h36m_3d"][0], cam_joints, atol=1e-5)
        idx = [kp.KEYPOINT_NAMES.index(n) for n in H36M_POINTS]
        np.testing.assert_allclose(p["keypoints_3d"][0][idx], cam_joints, atol=1e-5)
        assert (p["keypoints_3d_visibility"][0][idx] == 1).all()
        uv = fx.pinhole(cam_joints, k)
        vis = p["keypoints_2d_visibility"][0][idx] > 0
        inside = (uv[:, 0] > -0.5) & (uv[:, 0] < fh.W - 0.5) & (uv[:, 1] > -0.5) & (
            uv[:, 1] < fh.H - 0.5)  # fmt: skip
        np.testing.assert_array_equal(vis, inside)
        np.testing.assert_allclose(p["keypoints_2d"][0][idx][vis], uv[vis], atol=1e-3)
        np.testing.assert_allclose(p["bbox"][0], [10, 5, 50, 65])
        assert p["has_h36m"][0] and p["has_keypoints_3d"][0] and e["all_persons_annotated"]


def test_neuralannot_world_fit_round_trips_into_each_camera(built):
    """The stored camera-frame parameters give the world mesh moved by (R, t): vertices compared
    directly (no rest-root formula here)."""
    truth, model = built["truth"], built["truth"]["model"]
    ex = {(e["sequence_id"], int(e["frame_index"])): e for e in _examples(built, "train")}
    for (seq, frame), e in ex.items():
        p = e["persons"]
        if frame != 0:
            # frame 5: GT moved 6 cm (fit error > 25 mm); frame 10: no fit in the json.
            assert p["smpl_source"][0] == 0 and not p["has_pose"][0] and not p["has_3d"][0]
            continue
        r, t, k = _camera(truth, 1, 1 if seq == SEQ1 else 2)
        fit = truth["fits"][1][str(frame)]
        world = fx._run(
            model,
            np.asarray(fit["shape"])[None],
            np.asarray(fit["pose"][3:]).reshape(1, 23, 3),
            np.asarray(fit["pose"][:3])[None],
            np.asarray(fit["trans"]).reshape(1, 3),
        )
        stored = fx._run(model, p["betas"][:1], p["body_pose"][:1], p["global_orient"][:1],
                         p["transl"][:1])  # fmt: skip
        np.testing.assert_allclose(stored["vertices"][0], world["vertices"][0] @ r.T + t,
                                   atol=2e-5)  # fmt: skip
        np.testing.assert_allclose(p["body_pose"][0].ravel(), fit["pose"][3:], atol=1e-6)
        np.testing.assert_allclose(p["betas"][0], fit["shape"], atol=1e-6)
        np.testing.assert_allclose(p["joints_3d"][0], stored["joints"][0], atol=1e-5)
        np.testing.assert_allclose(p["joints_2d"][0], fx.pinhole(stored["joints"][0], k),
                                   atol=1e-3)  # fmt: skip
        assert p["smpl_source"][0] == schema.SMPL_SOURCES.index("neuralannot")
        assert p["has_pose"][0] and p["has_global_orient"][0] and p["has_betas"][0]
        assert p["has_transl"][0] and p["has_3d"][0] and not p["has_smpl"][0]
    meta = built["summary"]["metadata"]
    assert (
        meta["fit_error_checked"] and meta["fits_rejected_error_train"] == 2
    )  # frame 5, both cameras
    assert meta["fits_missing_train"] == 1 and meta["fits_attached_train"] == 2
    # Exact fits (the joints are the fit's own regressed joints) vs the 1.3x skeleton.
    assert meta["fit_error_mm_validation"]["max"] < 0.01
    assert meta["fit_error_mm_train"]["count"] == 4 and meta["fit_error_mm_train"]["max"] > 25


def _copy_manual(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_input_names_file_and_key_and_leaves_nothing(built, tmp_path):
    manual = _copy_manual(built["manual"], str(tmp_path / "manual"))
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("pre-existing")
    before = fx.file_tree(str(data_dir))
    path = os.path.join(manual, "annotations", "Human36M_subject9_data.json")
    with open(path) as f:
        data = json.load(f)
    del data["annotations"]
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(
        ValueError, match=r"Human36M_subject9_data\.json: missing key 'annotations'"
    ):
        prepare.prepare("h36m", manual, str(data_dir))
    assert fx.file_tree(str(data_dir)) == before  # the train split written first is gone too
    cam_path = os.path.join(manual, "annotations", "Human36M_subject1_camera.json")
    with open(cam_path) as f:
        cams = json.load(f)
    del cams["3"]["f"]
    with open(cam_path, "w") as f:
        json.dump(cams, f)
    with pytest.raises(ValueError, match=r"subject1_camera\.json: camera 3: missing key 'f'"):
        prepare.prepare("h36m", manual, str(data_dir), config="joints")
    assert fx.file_tree(str(data_dir)) == before


def test_missing_subject_files_are_listed(tmp_path):
    manual = tmp_path / "manual"
    (manual / "annotations").mkdir(parents=True)
    with pytest.raises(prepare.PrepareError, match=r"S5 joint_3d") as err:
        prepare.prepare("h36m", str(manual), str(tmp_path / "tfds"))
    assert "I2L-MeshNet" in str(err.value) and not (tmp_path / "tfds").exists()
