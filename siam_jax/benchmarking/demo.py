"""End-to-end demo FPS on a synthetic video: decode, model, render, write (docs/demo.md).

The demo's own code runs (``siam_jax.inference.demo.run_input``: the pipelined stages, the
prediction files, the overlay video) on a generated ``resolution`` px square H.264 video, with
a randomly initialised model of the given config whose centre threshold is lowered so that a
fixed number of people (``people``, the best-scored slots) is drawn in every frame: the figure
covers rendering and writing as a real video with that many people would. Both FPS figures
leave out the first frame (its time holds the compilation).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ml_collections
import numpy as np
from flax import nnx


def synthetic_video(path: Path, size: int, num_frames: int, fps: float = 30.0) -> Path:
    """A smooth moving gradient with a bright square (codec-friendly), ``num_frames`` long."""
    from siam_jax.inference import media

    yy, xx = np.mgrid[0:size, 0:size]
    with media.VideoWriter(path, fps) as writer:
        for i in range(num_frames):
            f = np.stack([(xx + 4 * i) % 256, yy % 256, np.full_like(xx, 90)], -1)
            f = f.astype(np.uint8)
            s = size // 4
            f[s : 2 * s, s + 2 * i : 2 * s + 2 * i] = 240
            writer.write(f)
    return path


def benchmark_demo(
    config: ml_collections.ConfigDict,
    resolution: int = 512,
    *,
    num_frames: int = 8,
    people: int = 3,
    seed: int = 0,
) -> dict:
    """Demo and model-only FPS of ``config``'s model (input ``resolution``) on the video."""
    from siam_jax.inference.demo import DemoOptions, run_input
    from siam_jax.inference.predictor import Predictor
    from siam_jax.models import build_model

    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (the first frame compiles), got {num_frames}")
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model.input_size = resolution
    cfg.model.center.threshold = -1.0  # every slot valid; ``people`` of them are kept
    model = build_model(cfg.model, rngs=nnx.Rngs(seed))
    predictor = Predictor(model, cfg, max_people=people)
    with tempfile.TemporaryDirectory(prefix="siam_demo_bench_") as tmp:
        video = synthetic_video(Path(tmp) / "synthetic.mp4", resolution, num_frames)
        s = run_input(predictor, video, Path(tmp) / "out", DemoOptions())
    return {
        "resolution": resolution,
        "frames": s["frames"],
        "people_per_frame": people,
        "clip_len": int(cfg.model.clip_len),
        "dtype": str(cfg.model.compute_dtype),
        "demo_fps": s["demo_fps"],
        "demo_model_fps": s["model_fps"],
        "first_frame_model_s": s["first_frame_model_s"],
    }
