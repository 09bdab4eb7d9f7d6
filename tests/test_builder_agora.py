"""AGORA: camera conversions against hand-worked values, and the builder on a tiny official-format
dataset (tests/fixtures_official.py, procedural body model)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax.data import conversions as cv
from tests import fixtures_official as fx

# --------------------------------------------------------------------------- conversions


def test_intrinsics_match_agora_numbers():
    # 1280x720 with f = 28 mm: fx = 28/36*1280 = 995.56 (ROMP eval_AGORA.py hard-codes 995.556),
    # fy = 28/20.25*720 = 995.56 too (square pixels), principal point at the image centre.
    k = cv.agora_intrinsics(28.0, 1280, 720)
    np.testing.assert_allclose(k, [[995.5556, 0, 640], [0, 995.5556, 360], [0, 0, 1]], atol=1e-3)
    # 4K = 3 x 720p, so 4K pixels x (720/2160) are 720p pixels exactly.
    np.testing.assert_allclose(cv.agora_intrinsics(28.0, 3840, 2160)[:2] / 3, k[:2])


def test_unreal_to_opencv_axes():
    # Unreal x forward, y right, z up -> OpenCV x right (= unreal y), y down (= -z),
    # z forward (= x).
    np.testing.assert_allclose(cv.unreal_to_opencv([1.0, 2.0, 3.0]), [2.0, -3.0, 1.0])


def test_agora_camera_rules_from_image_name():
    assert cv.agora_camera("x_hdri_y_00001.png").focal_mm == 50.0
    c = cv.agora_camera("ag_trainset_archviz_cam02_00001.png", 1, 2, 3, 4)
    assert (c.focal_mm, c.position_cm, c.yaw_deg, c.pitch_deg) == (18.0, (-490, 170, 265), -45, 30)
    c = cv.agora_camera("ag_trainset_flowers_00001.png", 1, 2, 3, 4)
    assert (c.focal_mm, c.position_cm, c.yaw_deg, c.ground_plane) == (
        28.0,
        (1, 2, 3),
        4,
        (0, -1.7, 0),
    )


def test_agora_chain_90_degree_camera_yaw_by_hand():
    # Camera at the Unreal origin, camYaw 90 (it looks along Unreal +y), default scene so the
    # ground plane puts it 1.7 m up: C = (0, -1.7, 0) in OpenCV world axes.
    # Person at Unreal (0, 500, 0) cm with Yaw 90, so the yaw step rot_y(Yaw - 90) is identity.
    # A fit point 1 m above the SMPL origin, p = (0, 1, 0) (SMPL is y-up):
    #   smpl2opencv: (0, -1, 0); + unreal2cv((0, 5, 0)) = (5, 0, 0)  ->  (5, -1, 0)
    #   - C -> (5, 0.7, 0); rot_y(-90) = [[0,0,-1],[0,1,0],[1,0,0]]  ->  (0, 0.7, 5)
    # i.e. 5 m straight ahead and 0.7 m below the optical axis (1 m high vs a 1.7 m camera).
    camera = cv.agora_camera("ag_scene_00001.png", 0.0, 0.0, 0.0, 90.0)
    a, b = cv.agora_fit_to_camera(camera, 90.0, np.array([0.0, 500.0, 0.0]))
    np.testing.assert_allclose(a @ np.array([0.0, 1.0, 0.0]) + b, [0.0, 0.7, 5.0], atol=1e-12)
    # The rotation part, column by column: x_smpl -> rot_y(-90) (1, 0, 0) = (0, 0, 1);
    # y_smpl -> (0, -1, 0); z_smpl -> smpl2opencv (0, 0, -1) -> rot_y(-90) -> (1, 0, 0).
    np.testing.assert_allclose(a, [[0, 0, 1], [0, -1, 0], [1, 0, 0]], atol=1e-12)
    # Person Yaw 180 instead: rot_y(-90) rot_y(90) = I, so A is just smpl2opencv.
    a2, _ = cv.agora_fit_to_camera(camera, 180.0, np.zeros(3))
    np.testing.assert_allclose(a2, np.diag([1.0, -1.0, -1.0]), atol=1e-12)


def test_agora_chain_matches_stepwise_fixture_with_pitch():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10, 3))
    camera = cv.agora_camera("ag_archviz_cam01_00001.png")
    a, b = cv.agora_fit_to_camera(camera, 37.0, np.array([120.0, -40.0, 10.0]))
    want, _ = fx.agora_project(
        pts,
        37.0,
        [120.0, -40.0, 10.0],
        camera.position_cm,
        camera.yaw_deg,
        camera.pitch_deg,
        camera.ground_plane,
        18.0,
        (3840, 2160),
    )
    np.testing.assert_allclose(pts @ a.T + b, want, atol=1e-12)


def test_transform_smpl_root_by_hand():
    # R_c = rot_y(90) = [[0,0,1],[0,1,0],[-1,0,0]], t_c = (0, 0, 3); rest root J0 = (0, 0.2, 0),
    # transl (1, 0, 0), no rotation. t' = R_c (J0 + t) + t_c - J0 = R_c (1, 0.2, 0) + (0, 0, 3)
    # - (0, 0.2, 0) = (0, 0.2, -1) + (0, 0, 3) - (0, 0.2, 0) = (0, 0, 2); orient' = (0, pi/2, 0).
    r_c = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    orient, transl = cv.transform_smpl_root(
        r_c, np.array([0.0, 0, 3]), np.zeros(3), np.array([1.0, 0, 0]), np.array([0.0, 0.2, 0])
    )
    np.testing.assert_allclose(transl, [0.0, 0.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(orient, [0.0, np.pi / 2, 0.0], atol=1e-12)


# --------------------------------------------------------------------------- builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from siam_jax.data.builders import agora

    root = tmp_path_factory.mktemp("agora")
    manual, data_dir, bm = root / "manual", root / "tfds", root / "body"
    models = fx.write_body_models(str(bm), genders=("neutral",))
    truth = fx.write_agora(str(manual), models["neutral"])
    builder = agora.Agora(data_dir=str(data_dir), body_model_dir=str(bm), config="1280x720")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    out = {}
    for split in ("train", "validation", "test"):
        src = tfds.data_source("agora/1280x720", data_dir=str(data_dir), split=split)
        out[split] = [fx.as_arrays(src[i]) for i in range(len(src))]
    meta = tfds.builder("agora/1280x720", data_dir=str(data_dir)).info.metadata
    return truth, out, models["neutral"], meta


def test_splits_and_order(built):
    _, out, _, meta = built
    assert [len(out[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
    assert [e["image_name"] for e in out["train"]] == [
        "ag_trainset_renderpeople_bfh_flowers_5_15_00001_1280x720.png",
        "ag_trainset_renderpeople_bfh_archviz_5_10_cam01_00002_1280x720.png",
    ]
    assert len(out["test"][0]["persons"]["joints_3d"]) == 0  # images only
    assert meta["skipped_images_train"] == 0 and meta["persons_without_fit_train"] == 0
    assert meta["fit_joint_mismatch_train"] == 0 and meta["fit_joint_mismatch_validation"] == 0


def test_flags_per_person(built):
    _, out, _, _ = built
    p0, p1 = out["train"][0]["persons"], out["train"][1]["persons"]
    np.testing.assert_array_equal(p0["kid"], [False, True])
    np.testing.assert_array_equal(p0["has_smpl"], [True, False])  # kids: 11 betas, not stored
    assert p0["has_3d"].all() and p0["has_2d"].all()
    np.testing.assert_array_equal(p0["valid"], [True, True])
    np.testing.assert_array_equal(p1["valid"], [False])  # occlusion 95 % > 90
    np.testing.assert_allclose(p1["occlusion"], [95.0])
    np.testing.assert_array_equal(p0["gender"], [1, 2])  # male, female


def test_intrinsics_and_2d_scaling(built):
    truth, out, _, _ = built
    ex0, ex1 = out["train"]
    np.testing.assert_allclose(ex0["intrinsics"], cv.agora_intrinsics(28.0, 1280, 720), atol=1e-3)
    np.testing.assert_allclose(ex1["intrinsics"], cv.agora_intrinsics(18.0, 1280, 720), atol=1e-3)
    gt = truth["ag_trainset_renderpeople_bfh_flowers_5_15_00001.png"]["persons"][0]
    np.testing.assert_allclose(
        ex0["persons"]["joints_2d"][0], gt["gt_joints_2d"][:24] / 3, atol=1e-3
    )


def test_projection_of_joints_3d_gives_joints_2d(built):
    _, out, _, _ = built
    for ex in out["train"] + out["validation"]:
        p = ex["persons"]
        uv = cv.project_points(p["joints_3d"], ex["intrinsics"])
        assert np.abs(uv - p["joints_2d"]).max() < 0.5


def test_reposed_smpl_reproduces_joints_3d(built):
    _, out, model, _ = built
    for ex in out["train"] + out["validation"]:
        p = ex["persons"]
        for i in np.flatnonzero(p["has_smpl"]):
            joints = cv.smpl_joints(
                model, p["betas"][i], p["body_pose"][i], p["global_orient"][i], p["transl"][i]
            )
            assert np.abs(joints - p["joints_3d"][i]).max() < 1e-3


def test_missing_fit_and_image_are_counted(tmp_path):
    from siam_jax.data.builders import agora

    manual, bm = tmp_path / "manual", tmp_path / "body"
    models = fx.write_body_models(str(bm), genders=("neutral",))
    fx.write_agora(str(manual), models["neutral"], drop_fit=True, drop_image=False)
    builder = agora.Agora(data_dir=str(tmp_path / "tfds"), body_model_dir=str(bm))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    assert builder.info.metadata["persons_without_fit_train"] == 1
    src = tfds.data_source("agora/1280x720", data_dir=str(tmp_path / "tfds"), split="train")
    assert not np.asarray(src[1]["persons"]["has_smpl"]).any()

    manual2 = tmp_path / "manual2"
    fx.write_agora(str(manual2), models["neutral"], drop_image=True)
    builder = agora.Agora(data_dir=str(tmp_path / "tfds2"), body_model_dir=str(bm))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual2))
    )
    assert builder.info.metadata["skipped_images_train"] == 1
    assert builder.info.splits["train"].num_examples == 1


def test_missing_body_model_names_files(tmp_path):
    from siam_jax.data.builders import agora

    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "README").write_text("not empty")
    builder = agora.Agora(data_dir=str(tmp_path / "tfds"), body_model_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match=r"SMPL_NEUTRAL\.npz"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
        )


def test_fit_with_missing_key_is_named(tmp_path):
    import pickle

    from siam_jax.data.builders import agora

    path = tmp_path / "fit.pkl"
    with open(path, "wb") as f:
        pickle.dump({"betas": np.zeros((1, 10)), "body_pose": np.zeros((1, 69))}, f)
    with pytest.raises(ValueError, match=r"fit\.pkl lacks key global_orient / root_pose"):
        agora.read_fit(str(path))
