"""The COCO-format builders, built with ``prepare`` from tiny official-format fixtures
(tests/fixtures_coco.py) and compared field by field with values computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy.spatial.transform import Rotation

from siam_jax.body import joint_sets
from siam_jax.body import keypoints as kp
from siam_jax.data import prepare, schema
from tests import fixtures_coco as fc
from tests import fixtures_official as fx

# Written out here from the sources (SPIN constants.py JOINT_MAP, ROMP constants.py), not from
# siam_jax.body.keypoints: which superset point each dataset joint must land on.
COCO_EXPECTED = {
    "nose": "nose", "left_eye": "left_eye", "right_ear": "right_ear",
    "left_shoulder": "smpl_left_shoulder", "right_wrist": "smpl_right_wrist",
    "left_hip": "lsp_left_hip", "right_hip": "lsp_right_hip", "left_knee": "smpl_left_knee",
    "right_ankle": "smpl_right_ankle",
}  # fmt: skip
CROWDPOSE_EXPECTED = {"head": "lsp_head_top", "neck": "lsp_neck", "left_hip": "lsp_left_hip",
                      "right_elbow": "smpl_right_elbow"}  # fmt: skip
POSETRACK_EXPECTED = {"nose": "nose", "head_bottom": "lsp_neck", "head_top": "lsp_head_top",
                      "left_ear": None, "right_ear": None,
                      "left_knee": "smpl_left_knee"}  # fmt: skip
MUCO_EXPECTED = {"head_top": "lsp_head_top", "pelvis": "mpii_pelvis", "head": "h36m_head",
                 "thorax": None, "spine": None, "right_toe": "right_big_toe",
                 "left_hand": "smpl_left_hand", "right_hip": "lsp_right_hip"}  # fmt: skip
MPII_NAMES = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
              "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
              "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")  # fmt: skip
MUCO_NAMES = ("head_top", "thorax", "right_shoulder", "right_elbow", "right_wrist",
              "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
              "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head",
              "right_hand", "left_hand", "right_toe", "left_toe")  # fmt: skip


def _examples(data_dir, name, split):
    src = tfds.data_source(name, data_dir=data_dir, split=split)
    return [fx.as_arrays(src[i]) for i in range(len(src))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_family")
    data_dir = str(root / "tfds")
    out = {"data_dir": data_dir}
    for name, writer, configs in (
        ("coco", fc.write_coco, ("keypoints", "neuralannot", "eft")),
        ("crowdpose", fc.write_crowdpose, ("keypoints",)),
        ("mpii", fc.write_mpii, ("eft",)),
        ("muco", fc.write_muco, ("augmented",)),
        ("posetrack", fc.write_posetrack, ("labeled",)),
    ):
        manual = str(root / name)
        out[name] = {"truth": writer(manual), "manual": manual}
        for config in configs:
            out[name][config] = prepare.prepare(name, manual, data_dir, config=config)
    return out


def _point(persons, i, name, dim="2d"):
    j = kp.KEYPOINT_NAMES.index(name)
    return persons[f"keypoints_{dim}"][i, j], persons[f"keypoints_{dim}_visibility"][i, j]


def _check_joint_map(persons, i, triples, names, expected):
    for joint, point in expected.items():
        x, y, v = triples[names.index(joint)]
        if point is None:
            continue
        xy, vis = _point(persons, i, point)
        assert vis == (v > 0), (joint, point)
        if v > 0:
            np.testing.assert_allclose(xy, (x, y), atol=1e-4)


def test_coco_persons_joints_by_name_and_smpl_limbs(built):
    ex = _examples(built["data_dir"], "coco_keypoints/keypoints", "train")
    assert [e["image_name"] for e in ex] == ["000000000001.jpg", "000000000002.jpg"]
    anns = {a["id"]: a for a in built["coco"]["truth"]["train"]["annotations"]}
    persons = ex[0]["persons"]
    assert len(persons["bbox"]) == 2  # 101, 102; the crowd and the box-only person are not persons
    for i, ann_id in enumerate((101, 102)):
        triples = np.asarray(anns[ann_id]["keypoints"], float).reshape(17, 3)
        _check_joint_map(persons, i, triples, fc.COCO_NAMES, COCO_EXPECTED)
        # SMPL-24 joints_2d: only limb joints (the SMPL knee is the COCO knee, SPIN/ROMP).
        knee = joint_sets.SMPL_JOINT_NAMES.index("left_knee")
        assert persons["visibility"][i, knee] == (triples[13, 2] > 0)
        hip = joint_sets.SMPL_JOINT_NAMES.index("left_hip")
        assert persons["visibility"][i, hip] == 0  # a COCO hip is not an SMPL hip
        x, y, w, h = anns[ann_id]["bbox"]
        np.testing.assert_allclose(persons["bbox"][i], [x, y, x + w, y + h], atol=1e-4)
    assert persons["has_2d"].all() and persons["has_keypoints_2d"].all()
    assert not persons["has_smpl"].any() and not persons["has_pose"].any()
    assert not persons["has_keypoints_3d"].any() and not persons["has_3d"].any()
    assert (persons["smpl_source"] == 0).all() and (persons["track_id"] == -1).all()


def test_coco_frame_fields_ignore_boxes_and_camera(built):
    ex = _examples(built["data_dir"], "coco_keypoints/keypoints", "train")[0]
    assert ex["all_persons_annotated"]
    # The crowd (103) and the box-only person (104), x y w h -> x0 y0 x1 y1.
    np.testing.assert_allclose(ex["ignore_boxes"], [[0, 60, 30, 110], [130, 5, 150, 35]])
    np.testing.assert_allclose(ex["intrinsics"], fc.frame_k(), rtol=1e-6)
    assert ex["sequence_id"] == "000000000001" and ex["frame_index"] == 0


def test_coco_metadata_counts(built):
    meta = built["coco"]["keypoints"]["metadata"]
    assert meta["images_missing_train"] == 1  # image 3 has no file
    assert meta["crowd_regions_train"] == 1 and meta["persons_without_keypoints_train"] == 1
    assert meta["persons_train"] == 3 and meta["images_train"] == 2
    assert built["coco"]["keypoints"]["splits"] == {"train": 2, "validation": 1}


def _fit_joints(model, betas, pose72, transl):
    go = Rotation.from_rotvec(np.asarray(pose72[:3])).as_matrix()[None, None]
    out = model(
        betas=np.asarray(betas, np.float32)[None],
        body_pose=np.asarray(pose72[3:], np.float32).reshape(1, 23, 3),
        global_orient=go.astype(np.float32),
        transl=np.asarray(transl, np.float32)[None],
    )
    return np.asarray(out.joints45[0], np.float64)


def _model(manual):
    from siam_jax.body import load_body_model

    return load_body_model(f"{manual}/body_models/SMPL_NEUTRAL.npz")


def test_neuralannot_fits_round_trip_and_project_like_their_own_camera(built):
    ex = _examples(built["data_dir"], "coco_keypoints/neuralannot", "train")[0]
    p, k = ex["persons"], ex["intrinsics"].astype(np.float64)
    na = built["coco"]["truth"]["neuralannot"]
    model = _model(built["coco"]["manual"])
    assert list(p["smpl_source"]) == [schema.SMPL_SOURCES.index("neuralannot")] * 2
    assert p["has_pose"].all() and p["has_global_orient"].all()
    assert not p["has_betas"].any() and not p["has_transl"].any() and not p["has_smpl"].any()
    for i, key in enumerate(("101", "102")):
        entry = na[key]
        np.testing.assert_allclose(p["betas"][i], entry["smpl_param"]["shape"], atol=1e-6)
        np.testing.assert_allclose(p["body_pose"][i].ravel(), entry["smpl_param"]["pose"][3:],
                                   atol=1e-6)  # fmt: skip
        f, c = entry["cam_param"]["focal"], entry["cam_param"]["princpt"]
        k_fit = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]])
        own = fx.pinhole(_fit_joints(model, entry["smpl_param"]["shape"],
                                     entry["smpl_param"]["pose"], entry["smpl_param"]["trans"]),
                         k_fit)  # fmt: skip
        pose = np.concatenate([p["global_orient"][i], p["body_pose"][i].ravel()])
        frame = fx.pinhole(_fit_joints(model, p["betas"][i], pose, p["transl"][i]), k)
        height = own[:, 1].max() - own[:, 1].min()
        err = np.sqrt(np.mean(np.sum((frame - own) ** 2, -1)))
        if key == "102":  # its camera is the frame's: the conversion is the identity
            assert err < 0.05, err
            np.testing.assert_allclose(p["global_orient"][i], entry["smpl_param"]["pose"][:3],
                                       atol=1e-4)  # fmt: skip
            np.testing.assert_allclose(p["transl"][i], entry["smpl_param"]["trans"], atol=1e-4)
        else:  # a focal of ~2200 px seen through one of ~140 px: foreshortening differs
            assert err < 0.03 * height, (err, height)
    meta = built["coco"]["neuralannot"]["metadata"]
    assert meta["fits_attached_train"] == 2 and meta["fits_null_train"] == 1
    assert meta["fits_on_ignored_annotations_train"] == 1  # 103 is the crowd


def test_eft_fits_match_weak_perspective_crop_camera(built):
    """EFT's own image projection (eft/utils/imutils.py convert_smpl_to_bbox then
    convert_bbox_to_oriIm: 112 (s X + t) in the 224 crop, scaled by 200 scale / 224 about the box
    centre) vs the converted fit through the frame camera."""
    ex = _examples(built["data_dir"], "coco_keypoints/eft", "train")
    model = _model(built["coco"]["manual"])
    entries = {e["annotId"]: e for e in built["coco"]["truth"]["eft"]["data"]}
    for frame, ann_id in ((ex[0], 101), (ex[1], 201)):
        p, k, e = frame["persons"], frame["intrinsics"].astype(np.float64), entries[ann_id]
        i = 0
        assert p["smpl_source"][i] == schema.SMPL_SOURCES.index("eft")
        pose = Rotation.from_matrix(np.asarray(e["parm_pose"])).as_rotvec().ravel()
        np.testing.assert_allclose(p["body_pose"][i].ravel(), pose[3:], atol=1e-4)
        s, tx, ty = e["parm_cam"]
        x = _fit_joints(model, e["parm_shape"], pose, np.zeros(3))
        crop = 112.0 * (s * x[:, :2] + [tx, ty])
        own = np.asarray(e["bbox_center"]) + crop * (200.0 * e["bbox_scale"] / 224.0)
        full = np.concatenate([p["global_orient"][i], p["body_pose"][i].ravel()])
        seen = fx.pinhole(_fit_joints(model, p["betas"][i], full, p["transl"][i]), k)
        height = own[:, 1].max() - own[:, 1].min()
        assert np.sqrt(np.mean(np.sum((seen - own) ** 2, -1))) < 0.04 * height


def test_mpii_eft_matched_by_centre_far_fit_rejected(built):
    ex = _examples(built["data_dir"], "mpii/eft", "train")[0]
    p = ex["persons"]
    eft = built["mpii"]["truth"]["eft"]["data"]
    for person, entry in ((0, eft[1]), (1, eft[0])):
        pose = Rotation.from_matrix(np.asarray(entry["parm_pose"])).as_rotvec().ravel()
        np.testing.assert_allclose(p["body_pose"][person].ravel(), pose[3:], atol=1e-4)
        np.testing.assert_allclose(p["betas"][person], entry["parm_shape"], atol=1e-6)
    assert built["mpii"]["eft"]["metadata"]["eft_unmatched_train"] == 1
    assert not ex["all_persons_annotated"]  # MPII labels selected people only
    triples = np.asarray(built["mpii"]["truth"]["train"]["annotations"][0]["keypoints"]).reshape(
        16, 3
    )
    expected = {"pelvis": "mpii_pelvis", "thorax": "mpii_thorax", "upper_neck": "lsp_neck",
                "head_top": "lsp_head_top", "right_hip": "lsp_right_hip",
                "left_wrist": "smpl_left_wrist"}  # fmt: skip
    _check_joint_map(p, 0, triples, MPII_NAMES, expected)


def test_crowdpose_joint_map_and_crowd(built):
    ex = _examples(built["data_dir"], "crowdpose/keypoints", "train")[0]
    anns = built["crowdpose"]["truth"]["annotations"]
    for i in range(2):
        triples = np.asarray(anns[i]["keypoints"], float).reshape(14, 3)
        _check_joint_map(ex["persons"], i, triples, fc.CROWDPOSE_NAMES, CROWDPOSE_EXPECTED)
    np.testing.assert_allclose(ex["ignore_boxes"], [[140, 0, 159, 40]])  # clipped to W - 1
    assert ex["all_persons_annotated"]


def test_muco_3d_keypoints_project_through_stored_intrinsics(built):
    ex = _examples(built["data_dir"], "muco/augmented", "train")
    assert [e["image_name"] for e in ex] == ["augmented_set/0.jpg", "augmented_set/1.jpg"]
    truth = built["muco"]["truth"]
    for e, image in zip(ex, truth["images"][:2], strict=True):
        f, c = image["f"], image["c"]
        np.testing.assert_allclose(e["intrinsics"], [[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
        anns = [a for a in truth["annotations"] if a["image_id"] == image["id"]]
        p = e["persons"]
        assert p["has_keypoints_3d"].all() and not p["has_3d"].any() and not p["has_smpl"].any()
        for i, ann in enumerate(anns):
            cam = np.asarray(ann["keypoints_cam"]) / 1000.0
            for joint, point in MUCO_EXPECTED.items():
                if point is None:
                    continue
                xyz, vis = _point(p, i, point, "3d")
                assert vis == 1
                np.testing.assert_allclose(xyz, cam[MUCO_NAMES.index(joint)], atol=1e-5)
            vis = p["keypoints_3d_visibility"][i] > 0
            uv = fx.pinhole(p["keypoints_3d"][i][vis].astype(np.float64), e["intrinsics"])
            seen2 = p["keypoints_2d_visibility"][i][vis] > 0
            np.testing.assert_allclose(uv[seen2], p["keypoints_2d"][i][vis][seen2], atol=1e-3)
    assert built["muco"]["augmented"]["metadata"]["images_unaugmented_skipped_train"] == 1


def test_posetrack_sequences_frames_tracks_and_ignore_regions(built):
    ex = _examples(built["data_dir"], "posetrack/labeled", "train")
    assert [(e["sequence_id"], int(e["frame_index"])) for e in ex] == [
        ("000001_bonn_train", 10),
        ("000001_bonn_train", 11),
    ]
    assert [list(e["persons"]["track_id"]) for e in ex] == [[0, 1], [0, 1]]
    np.testing.assert_allclose(ex[0]["ignore_boxes"], [[100, 5, 150, 40]])  # polygon bounds
    np.testing.assert_allclose(ex[1]["ignore_boxes"], [[130, 60, 150, 100]])  # box-only person
    assert all(e["all_persons_annotated"] for e in ex)
    ann = built["posetrack"]["truth"]["train"]["annotations"][0]
    triples = np.asarray(ann["keypoints"], float).reshape(17, 3)
    _check_joint_map(ex[0]["persons"], 0, triples, fc.POSETRACK_NAMES, POSETRACK_EXPECTED)
    meta = built["posetrack"]["labeled"]["metadata"]
    assert meta["frames_unlabeled_train"] == 1 and meta["sequences_train"] == 1
    assert meta["video"] and not built["coco"]["keypoints"]["metadata"]["video"]
    val = _examples(built["data_dir"], "posetrack/labeled", "validation")
    assert [(e["sequence_id"], int(e["frame_index"])) for e in val] == [("000002_mpii_test", 0)]


def test_frame_camera_is_sixty_degrees_over_the_long_side():
    from siam_jax.data.builders.coco_family import fit_camera

    k = fit_camera.frame_intrinsics(640, 480)
    assert math.isclose(2 * math.degrees(math.atan(320 / k[0, 0])), 60.0, rel_tol=1e-9)
    assert (k[0, 2], k[1, 2]) == (319.5, 239.5)
