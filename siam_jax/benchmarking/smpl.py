"""SMPL forward throughput: the jitted JAX BodyModel against smplx (PyTorch CPU, no_grad).

Both run the same weights (the procedural model saved in smplx's layout) on the same inputs in
one process; throughput ratio = smplx time / JAX time. `python -m siam_jax.benchmarking.smpl`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import jax
import numpy as np

from siam_jax.benchmarking.timing import time_call


class _Struct:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _time_torch(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _smplx_reference(model):
    """smplx.SMPL on the same weights (the model saved in smplx's layout), or None when smplx or
    torch is not installed."""
    try:
        import smplx
        import torch
    except ImportError:
        return None
    from siam_jax import body

    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.npz")
        body.save_body_model(model, path)
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    return smplx.SMPL(model_path=path, data_struct=_Struct(**data), num_betas=10)


def _reference_row(ref, forward, model, inputs, args, reps: int, t_jax: float) -> dict:
    """smplx's time on the same inputs, the speed-up, and the largest differences (metres)."""
    import torch

    betas, pose, transl = inputs
    b = betas.shape[0]
    tb, tp, tg, tt = (torch.from_numpy(x) for x in (betas, pose[:, 1:].reshape(b, 69),
                                                     pose[:, 0], transl))  # fmt: skip

    def run_ref():
        with torch.no_grad():
            return ref(betas=tb, body_pose=tp, global_orient=tg, transl=tt)

    t_ref = _time_torch(run_ref, warmup=2, repeats=reps)
    out_ref, out = run_ref(), forward(model, *args)
    return {
        "smplx_s": t_ref,
        "smplx_meshes_per_s": b / t_ref,
        "speedup": t_ref / t_jax,
        "max_vertex_err_m": float(
            np.abs(np.asarray(out.vertices) - out_ref.vertices.numpy()).max()
        ),
        "max_joint_err_m": float(np.abs(np.asarray(out.joints45) - out_ref.joints.numpy()).max()),
    }


def benchmark_smpl(
    batch_sizes: tuple[int, ...] = (1, 64, 512), repeats: int = 10, seed: int = 0
) -> dict:
    """Median seconds per forward (vertices + 45 joints) for JAX and smplx, and their ratio."""
    from siam_jax import body

    model = body.make_procedural_body_model(seed)
    forward = jax.jit(lambda m, b, p, g, t: m(b, p, g, t))
    rng = np.random.default_rng(seed)
    results: dict = {"device": str(jax.devices()[0]), "batches": {}}
    ref = _smplx_reference(model)
    if ref is None:
        results["smplx"] = "not installed: JAX timings only"
    else:
        import torch

        results["torch_threads"] = torch.get_num_threads()
    for b in batch_sizes:
        betas = rng.normal(size=(b, 10)).astype(np.float32)
        pose = (0.5 * rng.normal(size=(b, 24, 3))).astype(np.float32)
        transl = rng.normal(size=(b, 3)).astype(np.float32)
        args = [jax.device_put(x) for x in (betas, pose[:, 1:], pose[:, 0], transl)]
        reps = repeats if b < 512 else max(3, repeats // 2)
        t_jax = time_call(lambda a=args: forward(model, *a), warmup=2, repeats=reps)["median_s"]
        row = {"jax_s": t_jax, "jax_meshes_per_s": b / t_jax}
        if ref is not None:
            row.update(
                _reference_row(ref, forward, model, (betas, pose, transl), args, reps, t_jax)
            )
        results["batches"][b] = row
    return results


def main() -> None:
    res = benchmark_smpl()
    print(json.dumps(res, indent=2))
    for b, row in res["batches"].items():
        line = f"batch {b:4d}: JAX {row['jax_s'] * 1e3:8.2f} ms"
        if "smplx_s" in row:
            line += f"  smplx {row['smplx_s'] * 1e3:8.2f} ms  speedup {row['speedup']:.1f}x"
        print(line)


if __name__ == "__main__":
    main()
