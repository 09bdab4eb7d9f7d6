"""Achievable matmul FLOP/s on this machine, at the precision the model runs at.

Used as the denominator for "fraction of peak" in the benchmark reports. A dense matmul is the
best case XLA reaches (Eigen/oneDNN GEMM on CPU, cuBLAS on GPU), so it is a practical, not
theoretical, peak. It must be measured at the model's own arithmetic: the model's convolutions
and matmuls run in ``config.model.compute_dtype`` at JAX's default matmul precision
(``jax_default_matmul_precision``, None = DEFAULT: TF32 tensor cores for float32 on NVIDIA
Ampere and later), so a peak at ``Precision.HIGHEST`` (true float32, several times slower on
such GPUs) would put the model above 100% of "peak" (issue 20). ``precision_name`` says which
precision a figure was measured at; the reports print it beside the peak.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def default_precision() -> str:
    """The matmul precision JAX uses when a program sets none (what the model runs at)."""
    value = jax.config.jax_default_matmul_precision
    return "DEFAULT" if value is None else str(value).upper()


def precision_name(dtype=jnp.float32) -> str:
    """E.g. ``float32, matmul precision DEFAULT (jax default; TF32 on NVIDIA Ampere+)``."""
    name = jnp.dtype(dtype).name
    note = " (jax default; TF32 on NVIDIA Ampere+)" if name == "float32" else " (jax default)"
    prec = default_precision()
    return f"{name}, matmul precision {prec}{note if prec == 'DEFAULT' else ''}"


def matmul_program(n: int, dtype=jnp.float32):
    """The jitted ``n x n @ n x n`` matmul in ``dtype`` at the default (the model's) precision,
    and its two operands."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
    return jax.jit(jnp.matmul), a, b  # no precision argument: the model's default


def measure_matmul_peak(n: int = 2048, repeats: int = 10, dtype=jnp.float32) -> float:
    """Best-of-``repeats`` FLOP/s of an ``n x n @ n x n`` matmul (2 n^3 FLOPs) in ``dtype``."""
    f, a, b = matmul_program(n, dtype)
    jax.block_until_ready(f(a, b))  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


if __name__ == "__main__":
    print(f"matmul peak ({precision_name()}): {measure_matmul_peak() / 1e9:.1f} GFLOP/s")
