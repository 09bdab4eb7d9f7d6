"""The benchmark machinery on tiny configs (timings themselves are never asserted)."""

import json

import numpy as np
import pytest
from flax import nnx

from configs import tiny
from siam_jax.benchmarking import input_pipeline, model_stats, suite
from siam_jax.benchmarking.model import benchmark_siam
from siam_jax.models import build_model


def test_benchmark_row_and_report(tmp_path):
    config = tiny.get_config()
    row = benchmark_siam(config.model, 64, repeats=1)
    assert row["resolution"] == 64 and row["clip_len"] == config.model.clip_len
    assert row["gflops"] > 0 and row["latency_ms"] > 0
    # FPS counts frames of the clip per second of latency.
    assert abs(row["fps"] - row["clip_len"] / (row["latency_ms"] / 1e3)) < 1e-6 * row["fps"]
    row.update(config="tiny", mode="frame", fraction_of_peak=0.5)
    report = {"machine": suite.machine_description(), "matmul_peak_gflops_per_s": 1.0,
              "rows": [row]}  # fmt: skip
    out = tmp_path / "bench.json"
    suite.write_report(report, out)
    assert json.loads(out.read_text())["rows"][0]["resolution"] == 64
    table = out.with_suffix(".md").read_text()
    assert "| tiny | frame | 64 |" in table
    assert out.with_suffix(".png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.md", "bench.png"]


def test_run_suite_is_given_its_configs():
    with pytest.raises(ValueError, match="w32_frame"):
        suite.run_suite({"tiny": tiny.get_config()}, quick=True)


def test_model_stats_count_the_built_model():
    rows = model_stats.collect({"tiny": lambda ablation: tiny.get_config()}, with_flops=False)
    assert [r["ablation"] for r in rows] == list(model_stats.ROWS)
    # The abstract count equals the parameters of a real init.
    model = build_model(tiny.get_config().model, rngs=nnx.Rngs(0))
    leaves = nnx.to_flat_state(nnx.state(model, nnx.Param))
    total = sum(int(np.prod(v.get_value().shape)) for _, v in leaves)
    assert rows[0]["params"]["total"] == total > 0


def test_input_pipeline_benchmark_builds_a_small_siam_synthetic(tmp_path, monkeypatch):
    for key, value in dict(num_train=4, image_size=48, clip_len=4, max_people=2).items():
        monkeypatch.setitem(input_pipeline.BENCH_SYNTHETIC, key, value)
    config = tiny.get_config()
    config.batch_size = 2
    config.data.read_threads = 1
    train_before = list(config.data.train)
    r = input_pipeline.benchmark_input_pipeline(config, data_dir=str(tmp_path), num_batches=2)
    assert r["dataset"] == "siam_synthetic:bench" and r["images"] == 4
    assert (r["input_size"], r["batch_size"], r["num_workers"]) == (64, 2, 0)
    assert r["images_per_s"] > 0
    assert list(config.data.train) == train_before  # the caller's config is left as it was
    assert (tmp_path / "siam_synthetic" / "bench").is_dir()
