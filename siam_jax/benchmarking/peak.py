"""Achievable float32 FLOP/s on this machine: a large jitted matmul, best of repeats.

Used as the denominator for "fraction of peak" in the benchmark reports. A dense matmul is the
best case XLA reaches on CPU (Eigen/oneDNN GEMM), so it is a practical, not theoretical, peak.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def measure_matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` FLOP/s of an ``n x n @ n x n`` float32 matmul (2 n^3 FLOPs)."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    f = jax.jit(lambda x, y: jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
    jax.block_until_ready(f(a, b))  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


if __name__ == "__main__":
    print(f"float32 matmul peak: {measure_matmul_peak() / 1e9:.1f} GFLOP/s")
