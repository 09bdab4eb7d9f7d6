"""Latency, FPS, compile time and FLOP/s of the whole jitted SIAM model at batch 1.

What one row measures (docs/demo.md, "Speed figures"):
- ``latency_ms``: one jitted forward of one clip of ``clip_len`` frames (1 in frame mode).
- ``frame_ms`` / ``fps``: model-only cost per output frame. Frame mode: per image
  (= latency). Video mode: per frame of a video in steady state, ``video_frame_cost`` (the
  streaming step over cached per-frame encodings, as the demo runs it).
  A clip's ``clip_len / latency`` (``clip_frames_per_s``) is *not* a video FPS: a demo that
  emits a frame per input frame cannot share one clip's forward among ``clip_len`` outputs.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from siam_jax.benchmarking.timing import compiled_flops, time_call


def video_frame_cost(model, model_config, repeats: int, seed: int = 0) -> tuple[float, str]:
    """Seconds per output frame of the video model in steady state, and how it was measured.

    What the demo runs for a video (``siam_jax.inference.steps.StreamingStep``): one
    ``Streaming.step`` per frame (one frame's backbone, neck and centre head, then the window
    stages over the cached encodings), timed from a cache past warm-up.
    """
    from siam_jax.inference.streaming import Streaming

    stream = Streaming(model, ml_collections.ConfigDict({"model": model_config.to_dict()}))
    cache = stream.steady_cache(batch=1, seed=seed)
    size = int(model_config.input_size)
    image = jnp.asarray(np.random.default_rng(seed).uniform(size=(1, size, size, 3)), jnp.float32)
    k = jnp.broadcast_to(stream.default_intrinsics(), (1, 3, 3))
    timing = time_call(lambda: stream.step(cache, image, k), warmup=1, repeats=repeats)
    return timing["median_s"], "streaming (one Streaming.step per output frame, steady state)"


def benchmark_siam(
    model_config: ml_collections.ConfigDict,
    resolution: int,
    *,
    repeats: int = 5,
    seed: int = 0,
) -> dict:
    """One row of the benchmark table: ``model_config`` at ``resolution`` x ``resolution``."""
    from siam_jax.models import build_model

    cfg = ml_collections.ConfigDict(model_config.to_dict())
    cfg.input_size = resolution
    model = build_model(cfg, rngs=nnx.Rngs(seed))
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, images):
        return nnx.merge(graphdef, state)(images)

    batch = 1
    images = jnp.asarray(
        np.random.default_rng(seed).uniform(size=(batch, cfg.clip_len, resolution, resolution, 3)),
        jnp.float32,
    )
    start = time.perf_counter()
    compiled = forward.lower(state, images).compile()
    compile_s = time.perf_counter() - start
    flops = compiled_flops(compiled)
    timing = time_call(lambda: compiled(state, images), warmup=2, repeats=repeats)
    latency = timing["median_s"]
    clip_len = int(cfg.clip_len)
    if clip_len == 1:
        frame_s, how = latency, "per image"
    else:
        frame_s, how = video_frame_cost(model, cfg, repeats, seed)
    return {
        "resolution": resolution,
        "clip_len": clip_len,
        "batch": batch,
        "dtype": str(cfg.compute_dtype),
        "device": str(jax.devices()[0].device_kind),
        "latency_ms": 1e3 * latency,
        "frame_ms": 1e3 * frame_s,
        "fps": 1.0 / frame_s,
        "frame_cost": how,
        "clip_frames_per_s": clip_len / latency,
        "gflops": flops / 1e9,
        "achieved_gflops_per_s": flops / latency / 1e9,
        "compile_s": compile_s,
    }
