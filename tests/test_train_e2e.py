"""The real SIAM (configs/tiny.py) through the trainer, and the quickstart's baseline."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from siam_jax.training import loop, quickstart
from siam_jax.training.metrics_writer import read_metrics
from tests import test_train_helpers as h


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


def test_one_step_real_model_fake_batches(tmp_path):
    """The tiny real model, real body model, one train step and one evaluation."""
    from siam_jax import body as body_lib

    config = _tiny_config(total_steps=1, checkpoint_every_steps=1, eval_every_steps=1)
    body = body_lib.get_body_model()
    size, k = config.model.input_size, config.model.max_instances

    class It(h.FakeIterator):
        def __next__(self):
            if self.limit is not None and self.index >= self.limit:
                raise StopIteration
            self.index += 1
            return h.make_batch(self.index, self.global_batch, 0, body, size, k)

    result = loop.train_and_evaluate(
        config,
        str(tmp_path),
        make_train_iterator=lambda c, pi, pc: It(c),
        make_eval_iterator=lambda c, pi, pc: It(c, limit=1),
    )
    rows = read_metrics(str(tmp_path / "metrics.jsonl"))
    assert math.isfinite(rows[1]["loss"]) and rows[1]["l2_grads"] > 0
    for key in ("val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pve_mm"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert os.path.isdir(tmp_path / "checkpoints" / "1")


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
