"""The per-frame prediction npz: written and read without pickle, every key checked by name."""

from __future__ import annotations

import numpy as np
import pytest

from siam_jax.common import prediction_file


def _arrays(n: int = 2, joints: int = 24) -> dict:
    rng = np.random.default_rng(0)
    return dict(
        global_orient=rng.normal(size=(n, 3)).astype(np.float32),
        body_pose=rng.normal(size=(n, 69)).astype(np.float32),
        betas=np.zeros((n, 10), np.float32),
        transl=rng.normal(size=(n, 3)).astype(np.float32),
        track_id=np.arange(n, dtype=np.int32),
        score=np.full((n,), 0.9, np.float32),
        joints_3d=rng.normal(size=(n, joints, 3)).astype(np.float32),
        joints_2d=rng.normal(size=(n, joints, 2)).astype(np.float32),
        joint_set=np.asarray("smpl24"),
        intrinsics=np.eye(3, dtype=np.float32),
        image_size=np.asarray([480, 640], np.int32),
    )


def test_round_trip_with_allow_pickle_false(tmp_path):
    path = tmp_path / "f.npz"
    prediction_file.write(path, **_arrays())
    with np.load(path, allow_pickle=False) as z:  # a plain reader needs nothing of ours
        assert int(z["schema_version"]) == prediction_file.SCHEMA_VERSION
        assert str(z["joint_set"]) == "smpl24"
    got = prediction_file.read(path)
    np.testing.assert_array_equal(got["body_pose"], _arrays()["body_pose"])
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temp file left


def test_a_frame_with_nobody_is_valid(tmp_path):
    prediction_file.write(tmp_path / "e.npz", **_arrays(n=0))
    assert prediction_file.read(tmp_path / "e.npz")["score"].shape == (0,)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.pop("transl"), "missing keys ['transl']"),
        (lambda a: a.update(body_pose=np.zeros((2, 72), np.float32)), "body_pose has shape"),
        (lambda a: a.update(score=np.zeros((3,), np.float32)), "has shape"),
        (lambda a: a.update(betas=np.zeros((2, 16), np.float32)), "betas has 16 columns"),
        (lambda a: a.update(extra=np.zeros(1)), "unknown keys ['extra']"),
        (lambda a: a.update(transl=np.full((2, 3), np.nan, np.float32)), "non-finite"),
    ],
)
def test_bad_files_name_the_key(tmp_path, edit, message):
    arrays = _arrays()
    edit(arrays)
    with pytest.raises(prediction_file.PredictionFileError, match=message.replace("[", r"\[")):
        prediction_file.write(tmp_path / "bad.npz", **arrays)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_reader_refuses_another_schema_version(tmp_path):
    np.savez(tmp_path / "v9.npz", **{**_arrays(), "schema_version": np.asarray(9)})
    with pytest.raises(prediction_file.PredictionFileError, match="schema_version 9"):
        prediction_file.read(tmp_path / "v9.npz")
