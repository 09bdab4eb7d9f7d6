"""Timing helpers shared by the benchmarks: warm-up, repeats, median, XLA cost analysis."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def time_call(fn: Callable[[], Any], *, warmup: int = 2, repeats: int = 10) -> dict[str, float]:
    """Median/min wall time (seconds) of ``fn()``; blocks on JAX results before stopping."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def compiled_flops(compiled) -> float:
    """Forward FLOPs that XLA's cost analysis attributes to a compiled executable."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax returned one dict per computation
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))
