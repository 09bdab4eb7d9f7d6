"""Renderer and siam_synthetic throughput: `python -m siam_jax.benchmarking.render`."""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np


def main() -> None:
    from siam_jax.body import get_body_model
    from siam_jax.data.synthetic import SceneConfig, generate_example
    from siam_jax.render import render_meshes

    model = get_body_model()
    n = 5
    go = np.tile([np.pi, 0, 0], (n, 1)).astype(np.float32)
    tr = np.stack([np.linspace(-1.5, 1.5, n), np.full(n, 0.3), np.linspace(3, 7, n)], 1)
    out = model(betas=jnp.zeros((n, 10)), body_pose=jnp.zeros((n, 23, 3)), global_orient=go,
                transl=jnp.asarray(tr, jnp.float32))  # fmt: skip
    K = np.array([[500, 0, 255.5], [0, 500, 255.5], [0, 0, 1]], np.float32)
    cols = np.random.default_rng(0).random((n, 3))
    times = []
    for _ in range(4):
        t = time.perf_counter()
        render_meshes(out.vertices, model.faces, K, 512, 512, colors=cols).image.block_until_ready()
        times.append(time.perf_counter() - t)
    print(f"render 512x512, {n} people x {model.faces.shape[0]} tris: first {times[0]:.2f} s, "
          f"then {np.median(times[1:]):.3f} s")  # fmt: skip
    for size in (128, 160):
        cfg = SceneConfig(image_size=size, max_people=5)
        generate_example(0, 0, cfg)
        t = time.perf_counter()
        for i in range(1, 21):
            generate_example(i, 0, cfg)
        print(f"generate_example {size}px: {20 / (time.perf_counter() - t):.2f} examples/s")


if __name__ == "__main__":
    main()
