"""HRNet backbone forward: jitted JAX (BatchNorm folded, NHWC) vs timm (PyTorch), same weights.

Run: ``python -m siam_jax.benchmarking.hrnet [--widths 32 48] [--size 512] [--repeats 5]``.
Both run in one process on the same CPU, so the JAX/timm time ratio is robust to load from other
processes; absolute times are not. GFLOPs come from XLA's cost analysis of the compiled forward.

XLA CPU options tried (set ``XLA_FLAGS`` before JAX starts):
- default: W32 at 512, 2-core CPU under load from other processes: JAX folded 1.95 s vs timm
  5.16 s (ratio 0.38), 83.0 GFLOPs (XLA cost analysis), 42.5 GFLOP/s; unfolded BN 2.17 s;
- ``--xla_cpu_use_onednn=true`` (accepted by jax 0.10's XLA): ratio 0.39, 48.7 GFLOP/s, same
  outputs (max rel err 4.2e-6 vs timm); no clear gain beyond noise, so not set by default;
- ``--xla_cpu_use_thunk_runtime=false``: XLA warns it is no longer supported (ignored).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from siam_jax.benchmarking.peak import measure_matmul_peak, precision_name
from siam_jax.benchmarking.timing import compiled_flops, time_call
from siam_jax.models.convert import load_torch_hrnet
from siam_jax.models.hrnet import HRNet, fold_batchnorm


def benchmark_hrnet(width: int = 32, size: int = 512, repeats: int = 5, seed: int = 0) -> dict:
    """Batch-1 ``size x size`` forward of HRNet-W``width``: JAX (folded BN) vs timm."""
    import timm
    import torch

    tmodel = timm.create_model(f"hrnet_w{width}", features_only=True, feature_location="").eval()
    model = HRNet(width, rngs=nnx.Rngs(seed))
    report = load_torch_hrnet(model, tmodel.state_dict())
    if not report.ok:
        raise RuntimeError(
            f"weight transfer incomplete: {report.missing[:5]} {report.unexpected[:5]}"
        )
    model.eval()
    rows: dict = {"width": width, "size": size, "torch_threads": torch.get_num_threads()}

    x = np.random.default_rng(seed).normal(size=(1, size, size, 3)).astype(np.float32)
    xj = jnp.asarray(x)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    for name, m in (("jax_folded", fold_batchnorm(model)), ("jax_bn", model)):
        graphdef, state = nnx.split(m)

        def forward(state, images, graphdef=graphdef):
            return nnx.merge(graphdef, state)(images)

        t0 = time.perf_counter()
        compiled = jax.jit(forward).lower(state, xj).compile()
        rows[f"{name}_compile_s"] = time.perf_counter() - t0
        rows[f"{name}_gflops"] = compiled_flops(compiled) / 1e9
        rows[f"{name}_s"] = time_call(
            lambda c=compiled, s=state: c(s, xj), warmup=1, repeats=repeats
        )["min_s"]
        out = compiled(state, xj)

    with torch.inference_mode():
        ref = tmodel(xt)[1:]
        for _ in range(1):
            tmodel(xt)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tmodel(xt)
            times.append(time.perf_counter() - t0)
    rows["timm_s"] = min(times)
    rows["max_rel_err"] = max(
        float(
            np.abs(np.asarray(o) - r.numpy().transpose(0, 2, 3, 1)).max() / np.abs(r.numpy()).max()
        )
        for o, r in zip(out, ref, strict=True)
    )
    rows["ratio_jax_over_timm"] = rows["jax_folded_s"] / rows["timm_s"]
    rows["jax_gflop_per_s"] = rows["jax_folded_gflops"] / rows["jax_folded_s"]
    rows["timm_gflop_per_s"] = rows["jax_folded_gflops"] / rows["timm_s"]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[32, 48])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    peak = measure_matmul_peak()
    print(f"devices: {jax.devices()}  matmul peak ({precision_name()}): {peak / 1e9:.1f} GFLOP/s")
    for w in args.widths:
        r = benchmark_hrnet(w, args.size, args.repeats)
        print(
            f"HRNet-W{w} {args.size}x{args.size} b1: JAX folded {r['jax_folded_s'] * 1e3:.0f} ms, "
            f"JAX unfolded {r['jax_bn_s'] * 1e3:.0f} ms, timm {r['timm_s'] * 1e3:.0f} ms "
            f"(torch threads {r['torch_threads']}); ratio JAX/timm {r['ratio_jax_over_timm']:.2f}; "
            f"{r['jax_folded_gflops']:.1f} GFLOPs (XLA), JAX {r['jax_gflop_per_s']:.1f} GFLOP/s "
            f"= {r['jax_gflop_per_s'] / (peak / 1e9):.0%} of peak, "
            f"timm {r['timm_gflop_per_s']:.1f} GFLOP/s; max rel err {r['max_rel_err']:.1e}; "
            f"compile {r['jax_folded_compile_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
