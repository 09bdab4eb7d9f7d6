"""eval.py's data-parallel evaluation (siam_jax.evaluation.sharding): on 2 fake CPU devices, the
sharded forward and the whole evaluation report equal the single-device ones on a tiny split."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir: str, eval_batch: int):
    from configs import tiny

    c = tiny.get_config()
    c.data.data_dir = data_dir
    c.data.read_threads = 1
    c.data.eval_dataset = "siam_synthetic:tiny"
    c.model.center.threshold = 0.0  # untrained: every peak is a detection, all paths run
    c.eval.batch_size = eval_batch
    return c


def _compare(data_dir: str, workdir: str) -> dict:
    """Runs in the 2-device subprocess; returns what the test asserts on."""
    import jax
    import numpy as np
    from flax import nnx

    from siam_jax import models
    from siam_jax.data import pipeline
    from siam_jax.evaluation import forward, runner, sharding

    assert jax.device_count() == 2
    config = sharding.with_eval_batch(_config(data_dir, eval_batch=4))
    assert config.batch_size == 4
    model = models.build_model(config.model, rngs=nnx.Rngs(0))
    model.eval()
    batch = next(iter(pipeline.make_iterator(
        config, train=False, dataset="siam_synthetic:tiny/validation", split="validation",
        num_examples=4, process_index=0, process_count=1,
    )))  # fmt: skip
    one, many = forward.make_forward(model), sharding.make_sharded_forward(model)
    a = jax.device_get(one(batch["image"], batch["intrinsics"]))
    out = many(batch["image"], batch["intrinsics"])
    shards = {str(s.device) for s in jax.tree.leaves(out)[0].addressable_shards}
    b = jax.device_get(out)
    diffs = jax.tree.map(
        lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))),
        a,
        b,
    )
    reports = {}
    for name, fn in (("one", forward.make_forward), ("sharded", sharding.make_sharded_forward)):
        rep = runner.evaluate(
            config, os.path.join(workdir, name), "siam_synthetic", max_examples=6, model=model,
            progress=False, make_forward_fn=fn,
        )  # fmt: skip
        reports[name] = {"metrics": rep["metrics"], "num_images": rep["num_images"]}
    try:
        sharding.eval_batch_size(_config(data_dir, eval_batch=3))
        odd = "accepted"
    except ValueError as e:
        odd = str(e)
    return {"max_diff": max(jax.tree.leaves(diffs)), "devices": sorted(shards),
            "reports": reports, "odd": odd}  # fmt: skip


def test_sharded_evaluation_equals_single_device(synthetic_dir, tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    out = tmp_path / "result.json"
    cmd = [sys.executable, __file__, synthetic_dir, str(tmp_path / "work"), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert len(res["devices"]) == 2  # the outputs really live on both devices
    assert res["max_diff"] < 1e-4, res["max_diff"]
    one, sharded = res["reports"]["one"], res["reports"]["sharded"]
    assert one["num_images"] == sharded["num_images"] == 6  # 6 clips: the last batch is padded
    for key, value in one["metrics"].items():
        if isinstance(value, float):
            assert sharded["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        else:
            assert sharded["metrics"][key] == value, key
    assert "config.eval.batch_size=3" in res["odd"] and "2 devices" in res["odd"]


if __name__ == "__main__":  # the 2-device subprocess
    sys.path.insert(0, ROOT)
    result = _compare(sys.argv[1], sys.argv[2])
    with open(sys.argv[3], "w") as f:
        json.dump(result, f)
