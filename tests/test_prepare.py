"""``python -m siam_jax.data.prepare``: every builder, missing files, bad input named, nothing
half-written on failure; the schema-2 flags of the existing builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax.data import prepare, schema
from tests import fixtures_coco as fc
from tests import fixtures_official as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _json(path):
    with open(path) as f:
        return json.load(f)


def _write(path, data):
    with open(path, "w") as f:
        json.dump(data, f)


def test_missing_files_print_the_instructions_and_write_nothing(tmp_path):
    (tmp_path / "manual").mkdir()
    data_dir = tmp_path / "tfds"
    with pytest.raises(prepare.PrepareError) as err:
        prepare.prepare("coco", str(tmp_path / "manual"), str(data_dir))
    text = str(err.value)
    assert "person_keypoints_train2017.json" in text and "cocodataset.org" in text
    assert not data_dir.exists()


def test_sidecar_config_without_body_model_is_listed_missing(tmp_path):
    manual = tmp_path / "cp"
    fc.write_crowdpose(str(manual))
    fc._dump(str(manual / "CrowdPose_train_SMPL_NeuralAnnot.json"), {})
    with pytest.raises(prepare.PrepareError, match="SMPL_NEUTRAL"):
        prepare.prepare("crowdpose", str(manual), str(tmp_path / "tfds"), config="neuralannot")


def test_unknown_and_planned_names():
    with pytest.raises(prepare.PrepareError, match="known"):
        prepare.lookup("cocoa")
    for name in prepare.PLANNED:
        with pytest.raises(prepare.PrepareError, match="no builder yet"):
            prepare.lookup(name)
    for name in ("h36m", "mpi_inf_3dhp", "bedlam"):
        assert name in prepare.REGISTRY or name in prepare.PLANNED
    assert prepare.lookup("coco").name == "coco_keypoints"
    with pytest.raises(ValueError, match="already registered"):
        prepare.register(prepare.REGISTRY["muco"])


def test_failure_in_a_later_split_leaves_nothing_half_written(tmp_path):
    manual, data_dir = tmp_path / "coco", tmp_path / "tfds"
    fc.write_coco(str(manual))
    val = manual / "annotations" / "person_keypoints_val2017.json"
    broken = _json(val)
    del broken["annotations"]
    _write(val, broken)
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("pre-existing")
    before = fx.file_tree(str(data_dir))
    message = r"person_keypoints_val2017\.json: missing key 'annotations'"
    with pytest.raises(ValueError, match=message):
        prepare.prepare("coco", str(manual), str(data_dir))
    assert fx.file_tree(str(data_dir)) == before


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["annotations"][0].update(image_id=99), r"'image_id' 99 matches no image"),
        (lambda d: d["annotations"][0].pop("keypoints"), r"annotations\[0\] lacks key 'keypoints'"),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]), r"'keypoints' has 3 values"),
        (lambda d: d["categories"][0]["keypoints"].reverse(), r"categories\[0\]\['keypoints'\]"),
        (lambda d: d["images"][0].pop("file_name"), r"images\[0\] lacks key 'file_name'"),
    ],
)
def test_bad_annotation_json_names_file_and_key(tmp_path, mutate, message):
    manual = tmp_path / "cp"
    data = fc.write_crowdpose(str(manual))
    mutate(data)
    _write(manual / "json" / "crowdpose_train.json", data)
    with pytest.raises(ValueError, match=r"crowdpose_train\.json: .*" + message):
        prepare.prepare("crowdpose", str(manual), str(tmp_path / "tfds"))


def test_sidecar_entries_matching_no_annotation_are_named(tmp_path):
    manual = tmp_path / "coco"
    fc.write_coco(str(manual), with_val=False)
    path = manual / "annotations" / "MSCOCO_train_SMPL_NeuralAnnot.json"
    na = _json(path)
    na["777"] = na["101"]
    _write(path, na)
    with pytest.raises(ValueError, match=r"MSCOCO_train_SMPL_NeuralAnnot\.json: entry '777'"):
        prepare.prepare("coco", str(manual), str(tmp_path / "tfds"), config="neuralannot")
    del na["777"]
    del na["101"]["smpl_param"]["shape"]
    _write(path, na)
    with pytest.raises(ValueError, match=r"entry '101'\.smpl_param: missing key 'shape'"):
        prepare.prepare("coco", str(manual), str(tmp_path / "tfds2"), config="neuralannot")
    eft_path = manual / "eft_fit" / "COCO2014-All-ver01.json"
    eft = _json(eft_path)
    eft["data"][1]["annotId"] = 555
    _write(eft_path, eft)
    with pytest.raises(ValueError, match=r"COCO2014-All-ver01\.json: data\[1\]: annotId 555"):
        prepare.prepare("coco", str(manual), str(tmp_path / "tfds3"), config="eft")
    _write(eft_path, {"ver": "01"})
    with pytest.raises(ValueError, match=r"COCO2014-All-ver01\.json: missing key 'data'"):
        prepare.prepare("coco", str(manual), str(tmp_path / "tfds4"), config="eft")


def test_main_in_process_and_summary_file(tmp_path, capsys):
    manual, data_dir = tmp_path / "muco", tmp_path / "tfds"
    fc.write_muco(str(manual))
    argv = ["prepare", "muco", "--manual_dir", str(manual), "--data_dir", str(data_dir)]
    assert prepare.main(argv) == 0
    out = capsys.readouterr().out
    assert "images_unaugmented_skipped_train" in out and "examples: train 2" in out
    summary = _json(data_dir / "muco" / "augmented" / "1.0.0" / "prepare_summary.json")
    assert summary["splits"] == {"train": 2} and summary["video"] is False
    assert prepare.main(["prepare", "muco", "--manual_dir", str(tmp_path / "nope")]) == 1
    assert "MuCo-3DHP.json" in capsys.readouterr().err
    assert prepare.main(["prepare"]) == 2


def test_command_line_subprocess(tmp_path):
    manual, data_dir = tmp_path / "cp", tmp_path / "tfds"
    fc.write_crowdpose(str(manual))
    cmd = [sys.executable, "-m", "siam_jax.data.prepare", "crowdpose",
           f"--manual_dir={manual}", f"--data_dir={data_dir}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "crowd_regions_train" in res.stdout and "examples: train 1" in res.stdout
    src = tfds.data_source("crowdpose", data_dir=str(data_dir), split="train")
    assert len(src) == 1


def _persons(data_dir, name, split):
    src = tfds.data_source(name, data_dir=data_dir, split=split)
    return [fx.as_arrays(src[i]) for i in range(len(src))]


def test_existing_builders_flags_through_prepare(tmp_path):
    data_dir = str(tmp_path / "tfds")
    bm = str(tmp_path / "bm")
    models = fx.write_body_models(bm)
    fx.write_agora(str(tmp_path / "agora"), models["neutral"])
    prepare.prepare("agora", str(tmp_path / "agora"), data_dir, body_model_dir=bm)
    for ex in _persons(data_dir, "agora/1280x720", "train"):
        p = ex["persons"]
        assert ex["all_persons_annotated"] and ex["ignore_boxes"].shape == (0, 4)
        adult = p["has_smpl"]
        assert adult.any()  # adults with fits; kids keep has_smpl False
        np.testing.assert_array_equal(p["has_pose"], adult)
        np.testing.assert_array_equal(p["has_betas"], adult)
        assert not p["has_global_orient"].any()  # BEV: AGORA's orientation is not supervised
        assert (p["smpl_source"][adult] == schema.SMPL_SOURCES.index("dataset")).all()
    fx.write_pw3d(str(tmp_path / "pw3d"), models)
    prepare.prepare("pw3d", str(tmp_path / "pw3d"), data_dir, body_model_dir=bm)
    for ex in _persons(data_dir, "pw3d/full", "test"):
        p = ex["persons"]
        assert not ex["all_persons_annotated"]  # bystanders are not annotated
        for flag in ("has_pose", "has_global_orient", "has_betas", "has_transl"):
            np.testing.assert_array_equal(p[flag], p["valid"])
    fx.write_panoptic(str(tmp_path / "panoptic"))
    prepare.prepare("cmu_panoptic", str(tmp_path / "panoptic"), data_dir)
    ex = _persons(data_dir, "cmu_panoptic", "test")[0]
    assert not ex["persons"]["has_pose"].any() and not ex["all_persons_annotated"]


def test_synthetic_through_prepare_without_manual_dir(tmp_path):
    data_dir = str(tmp_path / "tfds")
    summary = prepare.prepare("siam_synthetic", None, data_dir, config="tiny")
    assert summary["splits"]["train"] == 16 and summary["video"]
    ex = _persons(data_dir, "siam_synthetic/tiny", "train")[0]
    p = ex["persons"]
    assert ex["all_persons_annotated"]
    for flag in ("has_smpl", "has_pose", "has_global_orient", "has_betas", "has_transl"):
        assert p[flag].all(), flag


def test_fit_behind_its_camera_is_counted_not_attached(tmp_path):
    manual = tmp_path / "coco"
    fc.write_coco(str(manual), with_val=False)
    path = manual / "annotations" / "MSCOCO_train_SMPL_NeuralAnnot.json"
    na = _json(path)
    na["101"]["smpl_param"]["trans"][2] = -40.0
    _write(path, na)
    summary = prepare.prepare("coco", str(manual), str(tmp_path / "tfds"), config="neuralannot")
    assert summary["metadata"]["fits_invalid_train"] == 1
    assert summary["metadata"]["fits_attached_train"] == 1  # 102 only


def test_every_name_prints_its_instructions_and_is_documented(tmp_path, capsys):
    """``prepare NAME --manual_dir EMPTY`` for each dataset of issue 14's list: exit 1, the
    missing files and the builder's own download instructions, nothing written; every name is a
    row of data/README.md (where files go, terms) and of docs/training_data.md's prepare table."""
    names = ("agora", "pw3d", "cmu_panoptic", "coco", "crowdpose", "mpii", "muco", "posetrack",
             "h36m", "mpi_inf_3dhp", "bedlam")  # fmt: skip
    assert {prepare.lookup(n).name for n in (*names, "siam_synthetic")} == set(prepare.REGISTRY)
    readme = open(os.path.join(ROOT, "data", "README.md"), encoding="utf-8").read()
    table = open(os.path.join(ROOT, "docs", "training_data.md"), encoding="utf-8").read()
    empty, data_dir = tmp_path / "empty", tmp_path / "tfds"
    empty.mkdir()
    for name in names:
        argv = ["prepare", name, "--manual_dir", str(empty), "--data_dir", str(data_dir)]
        assert prepare.main(argv) == 1, name
        err = capsys.readouterr().err
        entry = prepare.lookup(name)
        builder = prepare.make_builder(entry, str(data_dir), None, None)
        assert "missing under manual_dir" in err, (name, err)
        assert builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip().splitlines()[0] in err, name
        assert f"\n| {name} |" in readme and f"\n| {name} |" in table, name
    assert not data_dir.exists()
