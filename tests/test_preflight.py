"""siam_jax.training.preflight: every missing file of a config named at once, before compiling."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from configs import quickstart, recipe, tiny, w32_frame
from siam_jax.training import preflight

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(data_dir: str):
    c = tiny.get_config()
    c.data.data_dir = data_dir
    c.data.train = [("siam_synthetic:tiny", 1.0)]
    c.data.eval_dataset = "siam_synthetic:tiny"
    return c


def test_train_py_with_empty_data_root_names_every_missing_file(tmp_path):
    root, workdir = tmp_path / "empty_root", tmp_path / "W"
    root.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", SIAM_DATA_ROOT=str(root))
    cmd = [sys.executable, "train.py", "--config", "configs/w32_frame.py", f"--workdir={workdir}"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    assert r.returncode != 0
    assert elapsed < 60, elapsed
    err = r.stderr
    # The files the recipe puts under the data root (configs/recipe.py, data/README.md).
    for rel in (
        "body_models/smpl/SMPL_NEUTRAL.pkl",
        "body_models/smpl_mean_params.npz",
        "body_models/J_regressor_h36m.npy",
        "pretrained/pose_higher_hrnet_w32_512.pth",
    ):
        assert str(root / rel) in err, (rel, err[-3000:])
    for name, split, _, _ in recipe.MIXTURE:
        assert f"training dataset {name} split '{split}'" in err, (name, err[-3000:])
        assert f"python -m siam_jax.data.prepare {name.partition(':')[0]}" in err
    assert "validation dataset pw3d:full split 'validation'" in err
    assert f"{len(recipe.MIXTURE) + 5} missing piece(s)" in err
    assert "Compiling" not in err
    assert not workdir.exists()  # no checkpoint, not even the workdir


def test_prepared_dataset_is_detected(synthetic_dir, tmp_path):
    preflight.check(_tiny(synthetic_dir))  # nothing missing: no error
    c = _tiny(synthetic_dir)
    c.data.eval_split = "nosuchsplit"
    with pytest.raises(preflight.PreflightError, match="split 'nosuchsplit'") as e:
        preflight.check(c)
    assert "1 missing piece(s)" in str(e.value)
    empty = str(tmp_path / "none")
    with pytest.raises(preflight.PreflightError) as e:
        preflight.check(_tiny(empty))
    msg = str(e.value)
    assert "2 missing piece(s)" in msg  # training and validation split
    assert os.path.join(empty, "siam_synthetic", "tiny") in msg
    # siam_synthetic needs no manual download: no --manual_dir in its command.
    assert f"python -m siam_jax.data.prepare siam_synthetic --data_dir {empty} --config tiny" in msg


def test_quickstart_builds_its_own_data():
    c = quickstart.get_config()
    c.data.data_dir = "/nonexistent/tfds"
    preflight.check(c)  # siam_synthetic is built on first use; nothing else is needed


def test_procedural_body_with_real_dataset_is_refused(synthetic_dir):
    c = _tiny(synthetic_dir)
    c.data.train = [("siam_synthetic:tiny", 0.5), ("pw3d:full/train", 0.5)]
    with pytest.raises(preflight.PreflightError, match="procedural body is refused") as e:
        preflight.check(c)
    assert "pw3d:full" in str(e.value) and "allow_procedural_body" in str(e.value)
    c.allow_procedural_body = True
    with pytest.raises(preflight.PreflightError) as e:
        preflight.check(c)
    assert "procedural" not in str(e.value) and "pw3d:full split 'train'" in str(e.value)
    with pytest.raises(preflight.PreflightError, match="procedural body is refused"):
        preflight.check_evaluation(_tiny(synthetic_dir), "pw3d:full", "test")
    preflight.check_evaluation(_tiny(synthetic_dir), "siam_synthetic:tiny", "test")


def test_mixture_list_is_what_is_checked(tmp_path):
    c = w32_frame.get_config("base")
    assert preflight.training_specs(c) == [(n, s) for n, s, _, _ in recipe.MIXTURE]
    c.data.train = [("coco_keypoints:eft", 0.5), ("h36m/validation", 0.5, {"video": False})]
    assert preflight.training_specs(c) == [("coco_keypoints:eft", "train"), ("h36m", "validation")]
