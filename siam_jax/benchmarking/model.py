"""Latency, FPS, compile time and FLOP/s of the whole jitted SIAM model at batch 1."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from siam_jax.benchmarking.timing import compiled_flops, time_call


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

    images = jnp.asarray(
        np.random.default_rng(seed).uniform(size=(1, cfg.clip_len, resolution, resolution, 3)),
        jnp.float32,
    )
    start = time.perf_counter()
    compiled = forward.lower(state, images).compile()
    compile_s = time.perf_counter() - start
    flops = compiled_flops(compiled)
    timing = time_call(lambda: compiled(state, images), warmup=2, repeats=repeats)
    latency = timing["median_s"]
    frames = cfg.clip_len
    return {
        "resolution": resolution,
        "clip_len": frames,
        "latency_ms": 1e3 * latency,
        "fps": frames / latency,
        "gflops": flops / 1e9,
        "achieved_gflops_per_s": flops / latency / 1e9,
        "compile_s": compile_s,
    }
