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
    assert row["gflops"] > 0 and row["latency_ms"] > 0 and row["compile_s"] > 0
    # Frame mode: FPS is images per second of latency (one image per forward).
    assert row["frame_ms"] == row["latency_ms"] and row["frame_cost"] == "per image"
    assert abs(row["fps"] - 1e3 / row["latency_ms"]) < 1e-9 * row["fps"]
    assert (row["batch"], row["dtype"]) == (1, "float32") and row["device"]
    row.update(config="tiny", mode="frame", fraction_of_peak=0.5)
    report = {"machine": suite.machine_description(), "matmul_peak_gflops_per_s": 1.0,
              "rows": [row]}  # fmt: skip
    out = tmp_path / "bench.json"
    suite.write_report(report, out)
    assert json.loads(out.read_text())["rows"][0]["resolution"] == 64
    table = out.with_suffix(".md").read_text()
    assert "| tiny | frame | 64 | 1 | float32 |" in table
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


def test_video_row_counts_a_streaming_step_per_output_frame():
    config = tiny.get_config("video")
    row = benchmark_siam(config.model, 64, repeats=1)
    assert row["clip_len"] == 2
    # Video FPS is per output frame of the streaming step (as the demo runs it), timed on its
    # own, not clip_len frames per clip forward (the clip figure keeps its own name).
    assert row["frame_cost"].startswith("streaming")
    assert row["frame_ms"] != row["latency_ms"]
    assert abs(row["fps"] - 1e3 / row["frame_ms"]) < 1e-9 * row["fps"]
    assert abs(row["clip_frames_per_s"] - 2e3 / row["latency_ms"]) < 1e-9 * row["clip_frames_per_s"]


def test_headline_ratios_from_rows_and_demo():
    rows = [
        {"config": "w32_frame", "resolution": 512, "frame_ms": 100.0, "fps": 10.0,
         "fraction_of_peak": 0.4},
        {"config": "w32_video", "resolution": 512, "frame_ms": 120.0, "fps": 1 / 0.12,
         "frame_cost": "streaming"},
        {"config": "w32_frame", "resolution": 256, "frame_ms": 30.0, "fps": 33.3,
         "fraction_of_peak": 0.3},
    ]  # fmt: skip
    demo = {"demo_fps": 7.5, "model_fps": 8.0, "demo_over_model_fps": 7.5 / 8.0}
    ratios = suite.headline_ratios({"rows": rows, "demo": demo})
    assert ratios["video_streaming_over_frame_cost"] == pytest.approx(1.2)
    # Against the demo's own step measured alone, and, for comparison, against the frame row.
    assert ratios["demo_over_model_fps"] == pytest.approx(0.9375)
    assert ratios["demo_over_frame_row_fps"] == pytest.approx(0.75)
    assert ratios["siam_w32_frame_512_fraction_of_peak"] == 0.4
    assert suite.headline_ratios({"rows": [], "demo": demo}) == {"demo_over_model_fps": 0.9375}


def test_end_to_end_demo_benchmark_runs_the_demo_on_a_synthetic_video():
    from siam_jax.benchmarking.demo import benchmark_demo

    r = benchmark_demo(tiny.get_config(), 64, num_frames=3, people=2, model_calls=2)
    assert (r["resolution"], r["frames"], r["people_per_frame"]) == (64, 3, 2)
    assert r["demo_fps"] > 0 and r["demo_model_fps"] > 0 and r["model_fps"] > 0
    assert r["demo_writer_ms_per_frame"] > 0
    assert r["model_calls"] == 2
    assert r["demo_over_model_fps"] == pytest.approx(r["demo_fps"] / r["model_fps"])
    # The demo does at least the model's work, so it cannot be faster than the model alone.
    assert r["demo_fps"] <= r["demo_model_fps"] * 1.05
    with pytest.raises(ValueError, match="clip_len"):
        benchmark_demo(tiny.get_config("video"), 64)


def test_demo_benchmark_people_stand_in_view():
    # The randomly initialised model's people are replaced by bodies in full view: every vertex
    # projects inside the frame (pinhole written out here), the 2D joints are the projection of
    # the 3D joints, and the parameters are the ones the geometry was posed with.
    from siam_jax.benchmarking.demo import PeopleInView
    from siam_jax.inference import steps

    config = tiny.get_config()
    config.model.center.threshold = -1.0
    predictor = PeopleInView(build_model(config.model, rngs=nnx.Rngs(0)), config, 2, 2)
    step = steps.make_video_step(predictor)
    image = np.full((48, 80, 3), 100, np.uint8)
    first, second = step(image), step(image)
    for p in (first, second):
        k = np.asarray(p.intrinsics, np.float64)
        for pts, uv in ((p.vertices, None), (p.joints_3d, p.joints_2d)):
            pts = np.asarray(pts, np.float64)
            u = k[0, 0] * pts[..., 0] / pts[..., 2] + k[0, 2]
            v = k[1, 1] * pts[..., 1] / pts[..., 2] + k[1, 2]
            assert (u > 0).all() and (u < 80).all() and (v > 0).all() and (v < 48).all()
            if uv is not None:
                np.testing.assert_allclose(np.stack([u, v], -1), uv, atol=1e-3)
        assert p.vertices.shape[0] == len(p.scores) == 2
        np.testing.assert_allclose(p.global_orient, [[np.pi, 0, 0]] * 2, atol=1e-6)
    # The people walk: the second frame is shifted sideways, not a copy.
    shift = second.transl - first.transl
    assert (shift[:, 0] > 0).all() and np.allclose(shift[:, 1:], 0)


def test_peak_is_measured_at_the_model_precision():
    import jax
    import jax.numpy as jnp

    from siam_jax.benchmarking import peak

    for dtype in (jnp.float32, jnp.bfloat16):
        f, a, b = peak.matmul_program(64, dtype)
        text = f.lower(a, b).as_text()
        assert "HIGHEST" not in text and jnp.dtype(dtype).name.replace("float", "f") in text
        assert peak.measure_matmul_peak(64, repeats=1, dtype=dtype) > 0
    assert jax.config.jax_default_matmul_precision is None  # the model sets no precision
    assert peak.precision_name(jnp.bfloat16).startswith("bfloat16, matmul precision DEFAULT")
    assert peak.precision_name().startswith("float32, matmul precision DEFAULT")
