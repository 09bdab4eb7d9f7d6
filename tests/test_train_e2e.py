"""The real SIAM (configs/tiny.py) through the trainer, and the quickstart's baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from siam_jax.training import loop, quickstart
from siam_jax.training.metrics_writer import read_metrics


def _tiny_config(**overrides):
    from configs import tiny

    c = tiny.get_config()
    c.total_steps = 2
    c.log_every_steps = 1
    c.checkpoint_every_steps = 2
    c.eval_every_steps = 2
    c.data.num_eval_examples = 2
    c.data.augment.enabled = False
    c.data.read_threads = 1
    for k, v in overrides.items():
        node = c
        *parents, leaf = k.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = v
    return c


def test_real_model_real_pipeline_end_to_end(tmp_path):
    """configs/tiny.py SIAM, the Grain pipeline over a TFDS fixture in the official schema, the
    procedural body: two train steps, a checkpoint with the Grain state, an evaluation."""
    from tests import pipeline_fixture as fixture

    data_dir = str(tmp_path / "data")
    fixture.build_fixture(data_dir, "a")  # 20 frames of procedural people, 64x48
    config = _tiny_config(
        **{
            "data.data_dir": data_dir,
            "data.train": [("pipeline_fixture:a", 1.0)],
            "data.eval_dataset": "pipeline_fixture:a",
            "data.eval_split": "train",
        }
    )
    workdir = tmp_path / "work"
    result = loop.train_and_evaluate(config, str(workdir))
    rows = read_metrics(str(workdir / "metrics.jsonl"))
    assert sorted(rows) == [1, 2]
    for s in (1, 2):
        assert math.isfinite(rows[s]["loss"]) and rows[s]["l2_grads"] > 0
    for key in ("val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pve_mm"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["val_persons"] > 0
    # the checkpoint holds the Grain iterator state of process 0
    state = json.loads((workdir / "checkpoints" / "2" / "data" / "process_0-of-1.json").read_text())
    assert state


def test_mean_pose_baseline_closed_form():
    """GT persons standing exactly in the mean pose score 0 mm wherever they are placed; moving
    one non-pelvis joint by 24 mm costs 24 mm / 24 joints = 1 mm."""
    from siam_jax import body as body_lib
    from siam_jax.training import losses

    config = _tiny_config()
    body = body_lib.get_body_model()
    mean = quickstart.mean_pose_joints(config, body)  # pelvis-aligned [24 3]
    assert np.allclose(mean[losses.PELVIS], 0.0)
    n = 3
    joints = np.broadcast_to(mean, (1, 1, n, 24, 3)).copy()
    joints += np.array([[0.1, -0.2, 4.0], [1.0, 0.0, 7.0], [-0.5, 0.3, 3.0]])[None, None, :, None]
    batch = {
        "joints_3d": joints,
        "person_valid": np.ones((1, 1, n), bool),
        "has_3d": np.ones((1, 1, n), bool),
        "batch_valid": np.ones((1,), bool),
    }
    mm, persons = quickstart.mean_pose_baseline(config, body, [batch])
    assert persons == n and mm == pytest.approx(0.0, abs=1e-3)
    moved = dict(batch, joints_3d=joints.copy())
    moved["joints_3d"][..., 5, 0] += 0.024
    mm, _ = quickstart.mean_pose_baseline(config, body, [moved])
    assert mm == pytest.approx(1.0, rel=1e-4)
    # an invalid person does not count
    masked = dict(moved, person_valid=np.array([[[True, True, False]]]))
    mm, persons = quickstart.mean_pose_baseline(config, body, [masked])
    assert persons == 2 and mm == pytest.approx(1.0, rel=1e-4)


def test_constant_pose_diagnostic_closed_form():
    """Two persons whose joints differ by +-d along x around a common pose: the per-joint mean is
    that pose, d from each of them at every non-pelvis joint (23 of 24)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(24, 3))
    base -= base[0]
    d = 0.05
    off = np.zeros((24, 3))
    off[1:, 0] = d
    gt = np.stack([base + off, base - off])
    assert quickstart.constant_pose_mpjpe(gt) == pytest.approx(1000 * d * 23 / 24, rel=1e-9)


def test_quickstart_refuses_synthetic_data_built_with_other_parameters(tmp_path):
    """A synthetic config built earlier under the same name with other values is not reused."""
    config = _tiny_config(**{"data.data_dir": str(tmp_path)})
    s = config.data.synthetic
    s.num_train, s.num_validation, s.image_size, s.max_people, s.clip_len = 2, 1, 32, 1, 1
    assert quickstart.build_synthetic(config, "siam_synthetic/probe")
    assert not quickstart.build_synthetic(config, "siam_synthetic/probe")  # same values: reused
    s.depth_range = (3.0, 4.0)
    with pytest.raises(ValueError, match=r"depth_range.*Delete that folder"):
        quickstart.build_synthetic(config, "siam_synthetic/probe")
