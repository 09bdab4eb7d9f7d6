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

import contextlib
import functools
import multiprocessing
import multiprocessing.pool
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


@contextlib.contextmanager
def worker_pool(processes: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """A spawn pool of ``processes`` renderers for a whole build (None for ``processes <= 1``).

    One pool serves every split: a fresh worker spends its first ~10 s importing JAX and
    compiling the renderer, which a second pool for the validation split would pay again.
    """
    if processes <= 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes, initializer=_init_worker) as pool:
        yield pool


def examples(num: int, split_seed: int, cfg: SceneConfig,
             pool: multiprocessing.pool.Pool | None = None) -> Iterator[dict]:  # fmt: skip
    """Examples ``0 .. num-1`` of a split, in order; rendered by ``pool`` when one is given."""
    make = functools.partial(_example, split_seed=split_seed, cfg=cfg)
    if pool is None or num < 2:
        yield from map(make, range(num))
        return
    # Small chunks: the first frames of each worker are slow (renderer compilations).
    yield from pool.imap(make, range(num), chunksize=4)
