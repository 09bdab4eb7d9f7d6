"""CMU-Panoptic builder on a tiny CRMH-format annotation set (tests/fixtures_official.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax.body import joint_sets
from siam_jax.data import conversions as cv
from siam_jax.data.builders import cmu_panoptic
from tests import fixtures_official as fx


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("panoptic")
    manual, data_dir = root / "manual", root / "tfds"
    truth = fx.write_panoptic(str(manual))
    builder = cmu_panoptic.CmuPanoptic(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    source = tfds.data_source("cmu_panoptic", data_dir=str(data_dir), split="test")
    return truth, builder, [fx.as_arrays(source[i]) for i in range(len(source))], str(data_dir)


def test_examples_in_sequence_order_with_activity(built):
    _, _, examples, _ = built
    ids = [(e["sequence_id"], int(e["frame_index"])) for e in examples]
    assert ids == [
        ("160422_haggling1-00_16", 2000),
        ("160422_haggling1-00_16", 2001),
        ("160906_pizza1-00_30", 500),
    ]
    assert [cmu_panoptic.panoptic_activity(s) for s, _ in ids] == ["haggling"] * 2 + ["pizza"]


def test_h36m_joints_order_visibility_and_flags(built):
    truth, _, examples, _ = built
    ann = truth["annotations"]["160422_haggling1-00_16"][1]
    persons = examples[1]["persons"]
    idx = list(joint_sets.J24_TO_H36M)
    np.testing.assert_allclose(persons["joints_h36m_3d"], ann["kpts3d"][:, idx, :3], atol=1e-6)
    np.testing.assert_array_equal(persons["h36m_visibility"], ann["kpts3d"][:, idx, 3] > 0)
    # H36M joint 0 (pelvis) is superset joint 14 (CRMH J24_TO_H36M[0]).
    np.testing.assert_allclose(persons["joints_h36m_3d"][:, 0], ann["kpts3d"][:, 14, :3])
    assert persons["has_h36m"].all() and not persons["has_smpl"].any()
    assert not persons["has_3d"].any() and persons["valid"].all()
    np.testing.assert_allclose(persons["bbox"], ann["bboxes"][:, :4], atol=1e-4)


def test_fitted_intrinsics_reproject_2d_within_half_pixel(built):
    truth, _, examples, _ = built
    np.testing.assert_allclose(examples[0]["intrinsics"], truth["intrinsics"], atol=1e-2)
    idx = list(joint_sets.J24_TO_H36M)
    for ex in examples:
        ann = truth["annotations"][ex["sequence_id"]][0]
        if int(ex["frame_index"]) not in (2000, 500):
            continue
        uv = cv.project_points(ex["persons"]["joints_h36m_3d"], ex["intrinsics"])
        err = np.abs(uv - ann["kpts2d"][:, idx, :2]).max()
        assert err < 0.5, err


def test_metadata_reports_fit_error_and_no_skips(built):
    _, _, _, data_dir = built
    meta = tfds.builder("cmu_panoptic", data_dir=data_dir).info.metadata
    assert meta["skipped_images_test"] == 0 and meta["skipped_sequences_test"] == 0
    assert meta["intrinsics_rms_px"]["160422_haggling1-00_16"] < 0.05


def test_bad_annotation_names_file_and_key(tmp_path):
    import pickle

    (tmp_path / "annotations").mkdir()
    bad = tmp_path / "annotations" / "x.pkl"
    with open(bad, "wb") as f:
        pickle.dump(
            [
                {
                    "filename": "a.jpg",
                    "width": 1,
                    "height": 1,
                    "kpts2d": np.zeros((1, 24, 3)),
                    "kpts3d": np.zeros((1, 24, 4)),
                }
            ],
            f,
        )
    with pytest.raises(ValueError, match=r"x\.pkl\[0\] lacks keys \['bboxes'\]"):
        cmu_panoptic.read_annotations(str(bad))


def test_image_size_must_match_the_annotation(tmp_path):
    """CRMH's 2D points are in the 832 px frame: an image of another size fails the build,
    naming the image and both sizes."""
    manual = tmp_path / "manual"
    truth = fx.write_panoptic(str(manual))
    name = truth["annotations"]["160906_pizza1-00_30"][0]["filename"]
    fx.write_image(str(manual / "images" / name), 1920, 1080)  # the original HD frame
    builder = cmu_panoptic.CmuPanoptic(data_dir=str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match=r"1920x1080 px.*832x512"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
        )


def test_split_filename_forms():
    assert cmu_panoptic.split_filename("160422_haggling1-00_16_00002000.jpg") == (
        "160422_haggling1-00_16",
        2000,
    )
    assert cmu_panoptic.split_filename("160422_mafia2/00_30_00000123.jpg") == (
        "160422_mafia2-00_30",
        123,
    )
