"""Generating `siam_synthetic` examples in several processes (``SiamSynthetic(num_processes=)``).

An example is a pure function of (scene config, split seed, index) (scene.py), so the examples
of a split can be rendered by a pool of worker processes and yielded in index order: the records
are the same as a serial build's, byte for byte. The rasteriser's many small ops keep about one
core busy, so on the quickstart's 2-core machine a second process halves the frames' part of the
build (docs/choices.md "Quickstart model and budget").

Workers are started with ``spawn`` (JAX's threads do not survive a ``fork``) and run on the CPU
(``JAX_PLATFORMS=cpu``, one XLA thread each): several processes on one accelerator would each
reserve most of its memory.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Iterator

from siam_jax.data.synthetic.scene import SceneConfig, generate_example


def _init_worker() -> None:
    os.environ["JAX_PLATFORMS"] = "cpu"
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def _example(index: int, split_seed: int, cfg: SceneConfig) -> dict:
    ex = generate_example(index, split_seed, cfg)
    ex.pop("_maps")  # the builder does not store the maps: not worth pickling back
    return ex


def examples(num: int, split_seed: int, cfg: SceneConfig, processes: int = 1) -> Iterator[dict]:
    """Examples ``0 .. num-1`` of a split, in order; ``processes > 1`` renders them in a pool."""
    make = functools.partial(_example, split_seed=split_seed, cfg=cfg)
    if processes <= 1 or num < 2:
        yield from map(make, range(num))
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(processes, num), initializer=_init_worker) as pool:
        # Small chunks: the first frames of each worker are slow (renderer compilations).
        yield from pool.imap(make, range(num), chunksize=4)
