"""End-to-end demo FPS on a synthetic video against the FPS of the demo's own model step
(docs/demo.md, "Speed figures").

The demo's own code runs (``siam_jax.inference.demo.run_input``: the pipelined stages, the
prediction files, the overlay video) on a generated ``resolution`` px square H.264 video, with
a randomly initialised model of the given config whose centre threshold is lowered so that a
fixed number of people (``people``, the best-scored slots) is kept in every frame. An untrained
regressor puts those people wherever its random weights say (at 512 px: three copies of one
body in a corner, four fifths of its triangles outside the frame), which would make rendering
look cheaper than on a real video; so after the model's call each kept person's geometry is
replaced by one of ``people`` bodies standing side by side in full view, walking slowly
(``PeopleInView``; host-side, outside the timed model call, precomputed before the run).

Model-only FPS is measured in the same process on the same predictor: the demo's own step
(``steps.make_video_step``: the jitted forward with its host transfers, as
``Predictor.model_seconds`` counts it) called alone on a decoded frame of the same video,
half of the calls before the demo and half after (a machine whose load drifts affects both
figures alike). Both FPS figures are frames over summed seconds; the demo's leave out the first
frame, whose model call and rendering compile.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import nnx

from siam_jax.inference.predictor import FramePrediction, Predictor
from siam_jax.models.camera import perspective_projection

WALK_M_PER_FRAME = 0.01  # the in-view people drift sideways, so the scene is never static


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


def in_view_scene(body, people: int, num_frames: int, depth: float = 3.5) -> list[dict]:
    """Per frame the parameters and geometry of ``people`` upright rest-pose bodies side by side
    at ``depth`` metres (about 215 px tall at 512 px and 60 degrees: a typical demo subject)."""
    from siam_jax.inference.smoothing import body_forward

    # SMPL's rest body is y up, the camera's y points down: turned by pi about x (as
    # benchmarking/render.py does).
    orient = np.tile(np.array([np.pi, 0.0, 0.0], np.float32), (people, 1))
    pose = np.zeros((people, 23, 3), np.float32)
    betas = np.zeros((people, body.num_betas), np.float32)
    xs = np.linspace(-0.9, 0.9, people) if people > 1 else np.zeros(1)
    transl = np.stack([xs, np.full(people, 0.2), np.full(people, depth)], -1).astype(np.float32)
    out = body_forward(body, betas, pose, orient, transl)
    vertices, joints = np.asarray(out.vertices), np.asarray(out.joints[:, :24])
    scene = []
    for i in range(num_frames):  # a translation moves the posed body rigidly
        shift = np.array([WALK_M_PER_FRAME * i, 0.0, 0.0], np.float32)
        scene.append(dict(global_orient=orient, body_pose=pose, betas=betas, transl=transl + shift,
                          vertices=vertices + shift, joints_3d=joints + shift))  # fmt: skip
    return scene


class PeopleInView(Predictor):
    """A ``Predictor`` whose kept people get the geometry of ``in_view_scene`` (frame by frame,
    the k-th kept person the k-th body); scores, camera and the timed model call unchanged.
    Frame configs only (``clip_len`` 1: the per-image step calls the predictor; the streaming
    step of video configs does not)."""

    def __init__(self, model, config, people: int, num_frames: int):
        super().__init__(model, config, max_people=people)
        self.scene = in_view_scene(self.body, people, num_frames)
        self.frame = 0

    def __call__(self, frames) -> list[FramePrediction]:
        preds = super().__call__(frames)
        out = []
        for p in preds:
            g = self.scene[self.frame % len(self.scene)]
            self.frame += 1
            n = len(p.scores)
            uv = perspective_projection(g["joints_3d"][:n].astype(np.float64),
                                        np.asarray(p.intrinsics, np.float64))  # fmt: skip
            out.append(p.replace(**{key: v[:n] for key, v in g.items()},
                                 joints_2d=np.asarray(uv, np.float32)))  # fmt: skip
        return out


def model_only_fps(predictor: Predictor, image: np.ndarray, calls: int) -> tuple[float, int]:
    """(seconds, calls) of the demo's own model step alone on ``image`` (after one call that
    compiles), counted as the demo counts them (``Predictor.model_seconds``)."""
    from siam_jax.inference import steps

    step = steps.make_video_step(predictor)
    step(image)
    before_s, before_n = predictor.model_seconds, predictor.model_calls
    for _ in range(calls):
        step(image)
    return predictor.model_seconds - before_s, predictor.model_calls - before_n


def benchmark_demo(
    config: ml_collections.ConfigDict,
    resolution: int = 512,
    *,
    num_frames: int = 8,
    people: int = 3,
    model_calls: int = 6,
    seed: int = 0,
) -> dict:
    """Demo FPS and the FPS of the same model step alone, ``config``'s model at ``resolution``."""
    from siam_jax.inference import media
    from siam_jax.inference.demo import DemoOptions, run_input
    from siam_jax.models import build_model

    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (the first frame compiles), got {num_frames}")
    if int(config.model.clip_len) != 1:
        raise ValueError(f"the demo figure is measured on a frame config (clip_len 1), got "
                         f"clip_len {config.model.clip_len}")  # fmt: skip
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model.input_size = resolution
    cfg.model.center.threshold = -1.0  # every slot valid; ``people`` of them are kept
    model = build_model(cfg.model, rngs=nnx.Rngs(seed))
    predictor = PeopleInView(model, cfg, people, num_frames)
    with tempfile.TemporaryDirectory(prefix="siam_demo_bench_") as tmp:
        video = synthetic_video(Path(tmp) / "synthetic.mp4", resolution, num_frames)
        image = next(media.iter_frames(media.open_source(video))).image
        first = model_only_fps(predictor, image, model_calls // 2)
        s = run_input(predictor, video, Path(tmp) / "out", DemoOptions())
        second = model_only_fps(predictor, image, model_calls - model_calls // 2)
    model_fps = (first[1] + second[1]) / (first[0] + second[0])
    return {
        "resolution": resolution,
        "frames": s["frames"],
        "people_per_frame": people,
        "people_in_view": True,
        "clip_len": int(cfg.model.clip_len),
        "batch": 1,
        "dtype": str(cfg.model.compute_dtype),
        "device": str(jax.devices()[0].device_kind),
        "demo_fps": s["demo_fps"],
        "demo_model_fps": s["model_fps"],
        "demo_writer_ms_per_frame": 1e3 * s["writer_s_per_frame"],
        "model_fps": model_fps,
        "model_calls": first[1] + second[1],
        "demo_over_model_fps": s["demo_fps"] / model_fps,
        "first_frame_model_s": s["first_frame_model_s"],
    }
