"""The BEDLAM builder, built with ``python -m siam_jax.data.prepare bedlam`` from tiny per-scene
SMPL label npz files (tests/fixtures_bedlam.py) and compared field by field with values computed
here."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from siam_jax.data import prepare, schema
from tests import fixtures_bedlam as fb
from tests import fixtures_official as fx


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("bedlam")
    manual, data_dir = str(root / "manual"), str(root / "tfds")
    truth = fb.write_bedlam(manual)
    assert prepare.main(["prepare", "bedlam", "--manual_dir", manual, "--data_dir", data_dir]) == 0
    src = {
        s: tfds.data_source("bedlam", data_dir=data_dir, split=s) for s in ("train", "validation")
    }
    examples = {s: [fx.as_arrays(v[i]) for i in range(len(v))] for s, v in src.items()}
    import json

    with open(os.path.join(data_dir, "bedlam", "1.0.0", "prepare_summary.json")) as f:
        summary = json.load(f)
    return {"truth": truth, "manual": manual, "ex": examples, "summary": summary}


def test_sequences_frames_and_tracks(built):
    ex = built["ex"]["train"]
    got = [(e["sequence_id"], int(e["frame_index"])) for e in ex]
    a, c = fb.SCENE_A, fb.SCENE_CLOSEUP
    assert got == [(f"{a}/seq_000000", 0), (f"{a}/seq_000000", 5), (f"{a}/seq_000000", 10),
                   (f"{a}/seq_000001", 0), (f"{c}/seq_000000", 0)]  # fmt: skip
    assert [list(e["persons"]["track_id"]) for e in ex[:3]] == [[0, 1]] * 3  # rp_a, rp_b
    genders = [schema.GENDERS[g] for g in ex[0]["persons"]["gender"]]
    assert genders == ["male", "female"]
    assert [(e["sequence_id"], int(e["frame_index"])) for e in built["ex"]["validation"]] == [
        (f"{fb.SCENE_VAL}/seq_000003", 0)]  # fmt: skip
    meta = built["summary"]["metadata"]
    assert meta["video"] and meta["sequences_train"] == 3 and meta["persons_train"] == 9
    assert meta["gtkps_over_2px_train"] == 0 and meta["persons_eleventh_beta_train"] == 1


def test_smpl_in_camera_as_bedlam_defines_it(built):
    """Stored params give SMPL(pose_cam, shape, trans_cam) + cam_ext[:3, 3] (df_full_body_smpl.py),
    the stored 2D joints are ``gtkps``, the intrinsics ``cam_int``."""
    truth, models = built["truth"], built["truth"]["models"]
    rows = truth[fb.SCENE_A]
    for e in built["ex"]["train"][:4]:
        name = e["image_name"].split("/png/")[1]
        mine = [r for r in rows if r["imgname"] == name]
        p = e["persons"]
        np.testing.assert_allclose(e["intrinsics"], mine[0]["cam_int"], rtol=1e-6)
        assert e["all_persons_annotated"] and len(p["bbox"]) == len(mine)
        for i, row in enumerate(mine):
            if row["shape"][10] != 0:  # the 11th-beta body: pose only, 2D from gtkps
                assert p["has_pose"][i] and not p["has_betas"][i] and not p["has_transl"][i]
                assert not p["has_smpl"][i] and not p["has_3d"][i]
                np.testing.assert_allclose(p["joints_2d"][i], row["gtkps"][:24, :2], atol=1e-4)
                continue
            model = models[row["gender"]]
            out = fx._run(model, p["betas"][i : i + 1], p["body_pose"][i : i + 1],
                          p["global_orient"][i : i + 1], p["transl"][i : i + 1])  # fmt: skip
            np.testing.assert_allclose(out["vertices"][0], row["vertices"], atol=2e-5)
            np.testing.assert_allclose(p["joints_2d"][i], row["gtkps"][:24, :2], atol=1e-3)
            np.testing.assert_allclose(p["joints_3d"][i], out["joints"][0], atol=1e-5)
            assert p["has_smpl"][i] and p["has_betas"][i] and p["has_transl"][i]
            assert p["smpl_source"][i] == schema.SMPL_SOURCES.index("dataset")


def test_closeup_frames_are_turned_clockwise(built):
    e = built["ex"]["train"][-1]
    path = os.path.join(built["manual"], "images", fb.SCENE_CLOSEUP, "png",
                        "seq_000000/seq_000000_0000.png")  # fmt: skip
    original = np.asarray(Image.open(path).convert("RGB"))  # [H W 3] landscape
    stored = np.asarray(e["image"])
    assert original.shape == (fb.H, fb.W, 3) and stored.shape == (fb.W, fb.H, 3)
    # Clockwise: new[i, j] = old[H - 1 - j, i].
    i, j = 5, 7
    np.testing.assert_array_equal(stored[i, j], original[fb.H - 1 - j, i])
    k = e["intrinsics"]
    assert (2 * k[0, 2], 2 * k[1, 2]) == (fb.H, fb.W)


def test_bad_npz_names_file_and_key_and_leaves_nothing(built, tmp_path):
    manual = shutil.copytree(built["manual"], str(tmp_path / "manual"))
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("pre-existing")
    before = fx.file_tree(str(data_dir))
    val = os.path.join(manual, "validation_labels", f"{fb.SCENE_VAL}.npz")
    data = dict(np.load(val))
    np.savez(val, **{k: v for k, v in data.items() if k != "gtkps"})
    with pytest.raises(ValueError, match=r"highbmihand_6fps\.npz: missing keys \['gtkps'\]"):
        prepare.prepare("bedlam", manual, str(data_dir))
    assert fx.file_tree(str(data_dir)) == before
    data["pose_cam"] = np.zeros((len(data["imgname"]), 165))
    np.savez(val, **data)
    with pytest.raises(ValueError, match=r"165 values \(SMPL-X labels\)"):
        prepare.prepare("bedlam", manual, str(data_dir))
    assert fx.file_tree(str(data_dir)) == before
