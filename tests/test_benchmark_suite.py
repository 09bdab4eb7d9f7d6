"""The benchmark machinery on the tiny config (timings themselves are never asserted)."""

import importlib
import json

from siam_jax.benchmarking import suite
from siam_jax.benchmarking.model import benchmark_siam


def test_benchmark_row_and_report(tmp_path):
    config = importlib.import_module("configs.tiny").get_config()
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
    assert not list(tmp_path.glob(".bench.*"))
