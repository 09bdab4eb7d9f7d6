"""Throughput of the training input pipeline: frames per second out of ``make_iterator``.

``python benchmark.py --input_pipeline [--config configs/default.py] [--dataset SPEC]`` (the
config's ``model.input_size/clip_len``, ``batch_size`` and ``data.read_threads/num_workers`` are
the settings, ``--config.batch_size=16`` overrides them). With no dataset given, a small config
of the real ``siam_synthetic`` builder (``BENCH_SYNTHETIC``: 512x512 PNG frames, up to 5 people)
is built once into a temporary ``data_dir``, so the figure covers the same decode, warp, augment
and target work as training on any prepared dataset.
"""

from __future__ import annotations

import tempfile
import time

import ml_collections

BENCH_SYNTHETIC = {
    "name": "bench",
    "description": "input-pipeline benchmark frames (benchmarking/input_pipeline.py)",
    "num_train": 32,
    "num_validation": 0,
    "image_size": 512,
    "max_people": 5,
    "clip_len": 8,
}


def prepare_synthetic(data_dir: str) -> str:
    """Builds the ``siam_synthetic/bench`` train split into ``data_dir``; returns its spec."""
    from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic, SiamSyntheticConfig

    builder = SiamSynthetic(
        config=SiamSyntheticConfig(**BENCH_SYNTHETIC), data_dir=data_dir, file_format="array_record"
    )
    builder.download_and_prepare()
    return f"siam_synthetic:{BENCH_SYNTHETIC['name']}"


def time_iterator(config, *, num_batches: int = 20, warmup: int = 2) -> dict[str, float]:
    """Images/s of the training iterator of ``config`` (frames: b * t per batch)."""
    from siam_jax.data import pipeline

    it = pipeline.make_iterator(config, train=True, process_index=0, process_count=1)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    frames = 0
    for _ in range(num_batches):
        b = next(it)
        frames += b["image"].shape[0] * b["image"].shape[1]
    dt = time.perf_counter() - t0
    return {"images_per_s": frames / dt, "seconds": dt, "images": frames}


def benchmark_input_pipeline(
    config: ml_collections.ConfigDict,
    *,
    dataset: str = "",
    data_dir: str = "",
    num_batches: int = 20,
) -> dict:
    """``time_iterator`` on ``dataset`` (a spec in ``data_dir``) or, when empty, on the
    ``BENCH_SYNTHETIC`` frames; the result names the settings it ran with."""
    config = ml_collections.ConfigDict(config.to_dict())  # the caller's config stays as it was
    if dataset:
        config.data.train = [(dataset, 1.0)]
        config.data.data_dir = data_dir or config.data.data_dir
    else:
        config.data.data_dir = data_dir or tempfile.mkdtemp(prefix="siam_pipeline_bench_")
        config.data.train = [(prepare_synthetic(config.data.data_dir), 1.0)]
    result = time_iterator(config, num_batches=num_batches)
    result.update(
        dataset=config.data.train[0][0],
        input_size=int(config.model.input_size),
        batch_size=int(config.batch_size),
        clip_len=int(config.model.clip_len),
        read_threads=int(config.data.read_threads),
        num_workers=int(config.data.num_workers),
    )
    return result


__all__ = ["BENCH_SYNTHETIC", "benchmark_input_pipeline", "prepare_synthetic", "time_iterator"]
