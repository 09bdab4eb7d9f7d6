"""The keypoint superset (siam_jax.body.keypoints), its filling and augmentation
(siam_jax.data.keypoint_fill) and the schema-2 flag invariants (siam_jax.data.schema)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from siam_jax.body import joint_sets, make_procedural_body_model
from siam_jax.body import keypoints as kp
from siam_jax.data import augment, keypoint_fill, schema
from tests import fixtures_coco as fc

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training_data.md"
# SPIN constants.py SMPL_JOINTS_FLIP_PERM, written out.
SPIN_SMPL_FLIP = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20,
                  23, 22)  # fmt: skip


@pytest.fixture(scope="module")
def posed():
    model = make_procedural_body_model(seed=0)
    rng = np.random.default_rng(0)
    out = model(
        betas=rng.normal(0, 1, (2, 10)).astype(np.float32),
        body_pose=rng.normal(0, 0.2, (2, 23, 3)).astype(np.float32),
        global_orient=rng.normal(0, 1, (2, 3)).astype(np.float32),
        transl=np.array([[0, 0, 4.0], [1, 0, 6.0]], np.float32),
    )
    v = model.num_vertices
    regs = kp.KeypointRegressors(
        extra=np.abs(rng.normal(size=(9, v))) / v, h36m=np.abs(rng.normal(size=(17, v))) / v
    )
    return model, out, regs


def test_regressed_superset_matches_each_source(posed):
    _, out, regs = posed
    verts, joints = np.asarray(out.vertices, np.float64), np.asarray(out.joints, np.float64)
    got = np.asarray(kp.regress_keypoints(out.vertices, out.joints, regs), np.float64)
    assert got.shape == (2, 61, 3)
    names = kp.KEYPOINT_NAMES
    np.testing.assert_allclose(got[:, :24], joints, atol=1e-5)
    # smplx vertex_ids.py 'smplh': nose 332, left_heel 3387, right_big_toe 6617.
    for name, vid in (("nose", 332), ("left_heel", 3387), ("right_big_toe", 6617)):
        np.testing.assert_allclose(got[:, names.index(name)], verts[:, vid], atol=1e-5)
    extra = np.einsum("jv,bvc->bjc", regs.extra, verts)
    np.testing.assert_allclose(got[:, names.index("lsp_right_hip")], extra[:, 0], atol=1e-5)
    np.testing.assert_allclose(got[:, names.index("h36m_head")], extra[:, 8], atol=1e-5)
    h36m = np.einsum("jv,bvc->bjc", regs.h36m, verts)
    np.testing.assert_allclose(got[:, names.index("h36m17_pelvis")], h36m[:, 0], atol=1e-5)
    subset = ("lsp_head_top", "smpl_neck", "left_eye")
    sub = np.asarray(kp.regress_keypoints(out.vertices, out.joints, regs, subset))
    np.testing.assert_allclose(sub, got[:, [names.index(n) for n in subset]], atol=1e-6)


def test_missing_regressor_is_named(posed, tmp_path):
    _, out, _ = posed
    with pytest.raises(ValueError, match=r"J_regressor_extra\.npy"):
        kp.regress_keypoints(out.vertices, out.joints, names=("lsp_left_hip",))
    with pytest.raises(ValueError, match=r"J_regressor_h36m\.npy"):
        kp.regress_keypoints(out.vertices, out.joints, names=("h36m17_pelvis",))
    # Points from the SMPL joints and vertices need no extra file.
    kp.regress_keypoints(out.vertices, out.joints, names=("smpl_pelvis", "nose"))
    assert kp.required_sources(("lsp_neck", "nose")) == {"extra", "vertex"}
    np.save(tmp_path / "J_regressor_extra.npy", np.zeros((9, 10)))
    with pytest.raises(ValueError, match=r"shape \(9, 10\), expected \(9, 6890\)"):
        kp.KeypointRegressors.from_folder(tmp_path)
    regs = kp.KeypointRegressors.from_folder(tmp_path, num_vertices=10)
    assert regs.extra.shape == (9, 10) and regs.h36m is None


def test_flip_permutation_swaps_left_right_by_name():
    perm = kp.KEYPOINT_FLIP_PERM
    assert perm[:24] == SPIN_SMPL_FLIP
    names = kp.KEYPOINT_NAMES
    assert names[perm[names.index("lsp_left_hip")]] == "lsp_right_hip"
    assert names[perm[names.index("nose")]] == "nose"
    assert all(perm[p] == i for i, p in enumerate(perm))


def test_dataset_joint_names_are_the_official_orders():
    assert kp.dataset_joint_names("coco_17") == fc.COCO_NAMES
    assert kp.dataset_joint_names("crowdpose_14") == fc.CROWDPOSE_NAMES
    assert kp.dataset_joint_names("posetrack_17") == fc.POSETRACK_NAMES
    assert len(kp.dataset_joint_names("mpii_16")) == 16
    assert len(kp.dataset_joint_names("muco_21")) == 21
    assert len(kp.dataset_joint_names("mpi_inf_28")) == 28
    assert kp.dataset_joint_names("lsp_14") == joint_sets.LSP_JOINT_NAMES


def _doc_tables() -> dict[str, list[tuple[str, str]]]:
    tables, current = {}, None
    for line in DOCS.read_text().splitlines():
        m = re.match(r"^#### `(\w+)`", line)
        if m:
            current = tables.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\| (\d+) \| (\w+) \| (`?[\w-]+`?|-) \|", line)
        if current is not None and m:
            current.append((m.group(2), m.group(3).strip("`")))
    return tables


def test_docs_mapping_tables_match_the_code():
    tables = _doc_tables()
    assert set(tables) == set(kp.DATASET_JOINTS)
    for name, table in kp.DATASET_JOINTS.items():
        assert tables[name] == [(j, p or "-") for j, p in table], name


def test_fill_keypoints_by_name_and_smpl_limbs():
    person = schema.empty_person()
    pts = np.arange(34, dtype=float).reshape(17, 2)
    vis = np.ones(17)
    vis[3] = 0  # left_ear not labelled
    keypoint_fill.fill_keypoints(person, "coco_17", pts, vis)
    idx = kp.KEYPOINT_NAMES.index
    np.testing.assert_array_equal(person["keypoints_2d"][idx("lsp_left_hip")], pts[11])
    assert person["keypoints_2d_visibility"][idx("left_ear")] == 0
    knee = joint_sets.SMPL_JOINT_NAMES.index("right_knee")
    np.testing.assert_array_equal(person["joints_2d"][knee], pts[14])
    assert person["visibility"].sum() == 10  # shoulders, elbows, wrists, knees, ankles
    assert person["has_2d"] and person["has_keypoints_2d"] and not person["has_keypoints_3d"]
    schema.check_person(person, "filled")
    with pytest.raises(ValueError, match=r"expected \(17, 2\)"):
        keypoint_fill.fill_keypoints(schema.empty_person(), "coco_17", pts[:5])


def test_transform_keypoints_moves_points_as_augment_moves_smpl_joints():
    rng = np.random.default_rng(1)
    k = np.array([[120.0, 0, 63.5], [0, 120.0, 47.5], [0, 0, 1]])
    n = 2
    j3d = rng.normal(0, 0.4, (n, 24, 3)) + np.array([0, 0, 4.0])
    j2d = (j3d / j3d[..., 2:]) @ k.T
    persons = schema.stack_persons([schema.empty_person() for _ in range(n)])
    persons["joints_3d"], persons["joints_2d"] = (
        j3d.astype(np.float32),
        j2d[..., :2].astype(np.float32),
    )
    persons["visibility"] = np.ones((n, 24), np.float32)
    smpl = [kp.KEYPOINT_NAMES.index(f"smpl_{s}") for s in joint_sets.SMPL_JOINT_NAMES]
    heel_l, heel_r = kp.KEYPOINT_NAMES.index("left_heel"), kp.KEYPOINT_NAMES.index("right_heel")
    kp3 = np.zeros((n, 61, 3))
    kp3[:, smpl], kp3[:, heel_l] = j3d, [0.1, 0.9, 4.2]
    kp2 = (kp3 / np.where(kp3[..., 2:] == 0, 1, kp3[..., 2:])) @ k.T
    persons["keypoints_3d"], persons["keypoints_2d"] = kp3.astype(np.float32), kp2[..., :2]
    vis = np.zeros((n, 61), np.float32)
    vis[:, smpl] = vis[:, heel_l] = 1
    persons["keypoints_2d_visibility"] = persons["keypoints_3d_visibility"] = vis
    params = augment.AugmentParams(flip=True, rotation=0.3, scale=1.3, shift=(4.0, -3.0))
    tr = augment.frame_transform((96, 128), k, params, 64)
    moved = augment.transform_persons(persons, tr, None)
    got = keypoint_fill.transform_keypoints(persons, tr)
    np.testing.assert_allclose(got["keypoints_3d"][:, smpl], moved["joints_3d"], atol=1e-5)
    np.testing.assert_allclose(got["keypoints_2d"][:, smpl], moved["joints_2d"], atol=1e-3)
    # The flip moved the left heel into the right heel's slot, mirrored and rolled.
    assert got["keypoints_3d_visibility"][0, heel_r] == 1
    assert got["keypoints_3d_visibility"][0, heel_l] == 0
    np.testing.assert_allclose(
        got["keypoints_3d"][0, heel_r], tr.rotation @ [0.1, 0.9, 4.2], atol=1e-5
    )
    # Projecting the moved 3D points with the new intrinsics gives the moved 2D points.
    p = got["keypoints_3d"][0, heel_r] @ tr.intrinsics.T
    np.testing.assert_allclose(p[:2] / p[2], got["keypoints_2d"][0, heel_r], atol=1e-3)
    boxes = keypoint_fill.transform_boxes(np.array([[10, 20, 30, 40.0]]), tr)
    corners = augment.apply_affine(np.array([[10, 20], [30, 20], [10, 40], [30, 40.0]]), tr.pixel)
    np.testing.assert_allclose(boxes[0], [*corners.min(0), *corners.max(0)], atol=1e-4)


def test_flag_invariants():
    person = schema.empty_person()
    assert person["track_id"] == -1
    schema.check_person(person, "empty")
    person["has_pose"] = np.bool_(True)
    with pytest.raises(ValueError, match=r"\['has_pose'\] set but smpl_source is 'none'"):
        schema.check_flags(person, "p")
    person["smpl_source"] = np.int32(schema.SMPL_SOURCES.index("eft"))
    schema.check_flags(person, "p")
    person["has_smpl"] = np.bool_(True)
    with pytest.raises(ValueError, match="has_smpl set for a eft fit"):
        schema.check_flags(person, "p")
    person = schema.empty_person()
    person["has_keypoints_3d"] = np.bool_(True)
    with pytest.raises(ValueError, match="has_keypoints_3d is True but"):
        schema.check_flags(person, "p")
    with pytest.raises(ValueError, match="non-finite"):
        schema.frame_annotation(True, [[0, 0, np.nan, 1]])
    assert schema.frame_annotation(False)["ignore_boxes"].shape == (0, 4)
