"""3DPW builder on tiny official-format sequence files (tests/fixtures_official.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy.spatial.transform import Rotation

from siam_jax.data import conversions as cv
from tests import fixtures_official as fx

SEQ = "courtyard_backpack_00"  # a 3DPW-OCC sequence (ROMP PW3D_OCsubset), test split


def _build(tmp, config, gendered=True):
    from siam_jax.data.builders import pw3d

    manual, data_dir, bm = tmp / "manual", tmp / "tfds", tmp / "body"
    genders = ("neutral", "male", "female") if gendered else ("neutral",)
    models = fx.write_body_models(str(bm), genders=genders)
    truth = fx.write_pw3d(str(manual), models)
    builder = pw3d.Pw3d(data_dir=str(data_dir), body_model_dir=str(bm), config=config)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return truth, builder, models, str(data_dir)


def _read(data_dir, name, split):
    src = tfds.data_source(name, data_dir=data_dir, split=split)
    return [fx.as_arrays(src[i]) for i in range(len(src))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    truth, builder, models, data_dir = _build(tmp_path_factory.mktemp("pw3d"), "full")
    return truth, builder, models, _read(data_dir, "pw3d/full", "test"), data_dir


def test_frames_in_order_with_sequence_ids(built):
    _, builder, _, test, data_dir = built
    assert [(e["sequence_id"], int(e["frame_index"])) for e in test] == [(SEQ, t) for t in range(3)]
    assert test[0]["image_name"] == f"imageFiles/{SEQ}/image_00000.jpg"
    assert len(_read(data_dir, "pw3d/full", "validation")) == 3
    assert "train" not in builder.info.splits  # no sequence files there: left out, reported
    assert builder.info.metadata["num_sequences_train"] == 0
    assert builder.info.metadata["joints_body_model"] == "gendered"


def test_campose_valid_and_genders(built):
    _, _, _, test, _ = built
    np.testing.assert_array_equal(test[1]["persons"]["valid"], [True, False])
    np.testing.assert_array_equal(test[1]["persons"]["has_smpl"], [True, False])
    np.testing.assert_array_equal(test[0]["persons"]["valid"], [True, True])
    np.testing.assert_array_equal(test[0]["persons"]["gender"], [1, 2])  # 'm', 'f'


def test_joints_match_world_smpl_moved_by_cam_pose(built):
    # The independent path: gendered SMPL in 3DPW's world frame, then X_c = R X_w + t.
    truth, _, _, test, _ = built
    for t, ex in enumerate(test):
        for a in range(2):
            want = truth[SEQ]["joints_cam"][a][t]
            np.testing.assert_allclose(ex["persons"]["joints_3d"][a], want, atol=1e-4)


def test_reposed_params_and_projection(built):
    truth, _, models, test, _ = built
    data = truth[SEQ]["data"]
    for t, ex in enumerate(test):
        p = ex["persons"]
        np.testing.assert_allclose(ex["intrinsics"], truth[SEQ]["intrinsics"], atol=1e-5)
        uv = cv.project_points(p["joints_3d"], ex["intrinsics"])
        assert np.abs(uv - p["joints_2d"]).max() < 0.5
        for a, model in enumerate((models["male"], models["female"])):
            joints = cv.smpl_joints(
                model, p["betas"][a], p["body_pose"][a], p["global_orient"][a], p["transl"][a]
            )
            np.testing.assert_allclose(joints, p["joints_3d"][a], atol=1e-4)
            # Root orientation in the camera: R_c R_root (SPIN datasets/preprocess/pw3d.py).
            root = Rotation.from_rotvec(data["poses"][a][t, :3]).as_matrix()
            want = data["cam_poses"][t][:3, :3] @ root
            got = Rotation.from_rotvec(p["global_orient"][a]).as_matrix()
            np.testing.assert_allclose(got, want, atol=1e-5)
            np.testing.assert_allclose(p["betas"][a], data["betas"][a][:10], atol=1e-6)


def test_occ_config_keeps_only_listed_sequences(tmp_path):
    truth, builder, _, data_dir = _build(tmp_path, "pw3d_occ", gendered=False)
    assert set(builder.info.splits) == {"test"}  # downtown_walking (validation) is not in OCC
    test = _read(data_dir, "pw3d/pw3d_occ", "test")
    assert {e["sequence_id"] for e in test} == {SEQ}
    # Without SMPL_MALE/FEMALE the joints come from the neutral model (the fixture's truth too).
    assert builder.info.metadata["joints_body_model"] == "neutral"
    np.testing.assert_allclose(
        test[2]["persons"]["joints_3d"][1], truth[SEQ]["joints_cam"][1][2], atol=1e-4
    )


def test_bad_sequence_file_names_key(tmp_path):
    from siam_jax.data.builders import pw3d

    path = tmp_path / "x.pkl"
    with open(path, "wb") as f:
        pickle.dump({"sequence": "x", "betas": [], "poses": []}, f)
    with pytest.raises(ValueError, match=r"x\.pkl lacks keys \['trans', 'genders'"):
        pw3d.read_sequence(str(path))


def test_missing_image_is_skipped_and_counted(tmp_path):
    import os

    from siam_jax.data.builders import pw3d

    manual, bm = tmp_path / "manual", tmp_path / "body"
    models = fx.write_body_models(str(bm), genders=("neutral",))
    fx.write_pw3d(str(manual), models)
    os.remove(manual / "imageFiles" / SEQ / "image_00002.jpg")
    (manual / "imageFiles" / SEQ / "image_00001.jpg").write_bytes(b"not a jpeg")
    builder = pw3d.Pw3d(data_dir=str(tmp_path / "tfds"), body_model_dir=str(bm))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    assert builder.info.metadata["skipped_frames_test"] == 2
    assert builder.info.splits["test"].num_examples == 1


def test_invalid_actor_is_an_ignore_box_not_background(built):
    """Issue 20: an actor with campose_valid 0 stands in the image without a trusted fit; the
    frame keeps its box as don't-care. Expected box by hand: the fixture's camera-frame joints
    (3DPW's world SMPL moved by cam_poses) through u = fx x / z + cx, v = fy y / z + cy."""
    truth, _, _, test, _ = built
    k = truth[SEQ]["data"]["cam_intrinsics"]
    for t, ex in enumerate(test):
        assert not ex["all_persons_annotated"]  # 3DPW annotates the actors, not bystanders
        if t != 1:  # both actors valid: nothing ignored
            assert ex["ignore_boxes"].shape == (0, 4)
            continue
        j = truth[SEQ]["joints_cam"][1][t]
        u = k[0, 0] * j[:, 0] / j[:, 2] + k[0, 2]
        v = k[1, 1] * j[:, 1] / j[:, 2] + k[1, 2]
        assert (u > 0).all() and (u < 95).all() and (v > 0).all() and (v < 127).all()  # in view
        want = [[u.min(), v.min(), u.max(), v.max()]]
        np.testing.assert_allclose(ex["ignore_boxes"], want, atol=1e-3)
