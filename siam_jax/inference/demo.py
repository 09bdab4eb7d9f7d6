"""The demo: meshes for every person in an image, a folder of images, a video or a folder of
videos (docs/demo.md).

Per input: frames are decoded, run through the model one at a time (``steps``: the streaming
step over cached per-frame encodings for videos, the image alone otherwise), given stable IDs
(``Tracker``), optionally
smoothed per track (``Smoother``, ``--smooth``), then rendered and written; the three stages
overlap (``pipeline.run_pipeline``). Outputs in the input's output folder: the overlay video
(``<input>_overlay.mp4``) or one overlay PNG per image, ``params/<frame>.npz`` (the prediction
file of siam_jax.common.prediction_file), with ``save_obj`` ``meshes/<frame>_id<k>.obj``, with
``export=("bvh",)`` ``<input>_track<k>.bvh``, and last ``<input name>.summary.json`` (the resume
marker: an input whose summary exists is skipped on a rerun).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from absl import logging

from siam_jax.common.files import write_json
from siam_jax.inference import media, outputs, overlay, steps
from siam_jax.inference.intrinsics import Camera
from siam_jax.inference.predictor import FramePrediction, Predictor
from siam_jax.inference.tracking import Tracker

EXPORTS = ("bvh",)


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    camera: Camera | None = None  # None: config.model.fov_degrees across the longer side
    save_obj: bool = False
    smooth: bool = False
    export: tuple[str, ...] = ()
    side_view: bool = False
    queue_size: int = 4  # frames in flight between two stages

    def __post_init__(self):
        unknown = sorted(set(self.export) - set(EXPORTS))
        if unknown:
            raise ValueError(f"unknown export {unknown}: expected one of {EXPORTS}")


@dataclasses.dataclass
class _Result:
    """One frame through the model stage, on its way to the writer."""

    index: int
    frame: media.Frame
    pred: FramePrediction
    ids: np.ndarray


class _Run:
    """The state of one input: its model step, tracker, smoother, writers and counters."""

    def __init__(self, predictor: Predictor, source: media.Source, out_dir: Path, opts):
        self.predictor, self.source, self.out_dir, self.opts = predictor, source, out_dir, opts
        video = source.kind == "video"
        self.step = steps.make_video_step(predictor) if video else steps.image_step(predictor)
        self.tracker = Tracker()
        self.smoother = None
        if opts.smooth:
            from siam_jax.inference.smoothing import Smoother

            self.smoother = Smoother(predictor.body, source.fps)
        self.bvh = None
        if "bvh" in opts.export:
            from siam_jax.inference.bvh import BvhRecorder

            self.bvh = BvhRecorder(_rest_joints_fn(predictor.body))
        self.writer = None
        if video:
            self.writer = media.VideoWriter(out_dir / f"{source.path.stem}_overlay.mp4", source.fps)
        self.frames_without_people: list[str] = []
        self.ids: set[int] = set()
        self.frames = 0
        self.first_written_time: float | None = None  # the first frame's time holds compiling
        self.last_written_time: float | None = None
        self.first_model_seconds = 0.0
        self.writer_seconds = 0.0  # the writer stage (files, overlay, encoding), first frame out
        self.progress = None  # a tqdm bar over written frames

    def model(self, item: tuple[int, media.Frame]) -> _Result:
        """The model stage: prediction, IDs, smoothing (sequential state)."""
        index, frame = item
        pred = self.step(frame.image)
        ids = self.tracker.update(pred.transl)
        if self.smoother is not None:
            pred = self.smoother(pred, ids)
        if index == 0:
            self.first_model_seconds = self.predictor.model_seconds
        return _Result(index, frame, pred, ids)

    def write(self, r: _Result) -> None:
        """The writer stage: prediction file, meshes, BVH frames, overlay (and side view)."""
        start = time.perf_counter()
        self.frames += 1
        self.ids.update(int(i) for i in r.ids)
        if not len(r.ids):
            self.frames_without_people.append(r.frame.name)
            logging.warning("%s: no person detected (best centre score %.3f)", r.frame.name,
                            r.pred.max_score)  # fmt: skip
        faces = self.predictor.faces
        outputs.write_frame(self.out_dir, r.frame.name, r.pred, r.ids, frame_index=r.index,
                            faces=faces if self.opts.save_obj else None)  # fmt: skip
        if self.bvh is not None:
            p = r.pred
            self.bvh.add(r.index, r.ids, p.global_orient, p.body_pose, p.betas, p.transl)
        drawn = overlay.overlay(r.frame.image, r.pred, r.ids, faces)
        if self.opts.side_view:
            side = overlay.side_view(r.pred, r.ids, faces, r.frame.image.shape[:2])
            drawn = np.concatenate([drawn, side], axis=1)
        if self.writer is not None:
            self.writer.write(drawn)
        else:
            media.write_image(self.out_dir / f"{r.frame.name}_overlay.png", drawn)
        self.last_written_time = time.perf_counter()
        if self.first_written_time is None:
            self.first_written_time = self.last_written_time
        else:
            self.writer_seconds += self.last_written_time - start
        if self.progress is not None:
            self.progress.update(1)

    def finish(self, wall_s: float) -> dict:
        if self.writer is not None:
            self.writer.close()
        bvh_files = []
        if self.bvh is not None:
            bvh_files = self.bvh.write(self.out_dir, self.source.path.stem, self.source.fps,
                                       self.frames)  # fmt: skip
        return {
            "input": str(self.source.path),
            "frames": self.frames,
            "frames_without_people": self.frames_without_people,
            "ids": sorted(self.ids),
            "fps_of_video": self.source.fps,
            "bvh": [Path(p).name for p in bvh_files],
            **_speed(self, wall_s),
        }


def _speed(run: _Run, wall_s: float) -> dict:
    """Demo FPS (decode, model, render, write) and model-only FPS in steady state: both leave
    out the first frame, whose model call and rendering compile; its model seconds apart."""
    p, n = run.predictor, run.frames
    steady_wall = float("nan")
    if run.first_written_time is not None:
        steady_wall = run.last_written_time - run.first_written_time
    steady_model = p.model_seconds - run.first_model_seconds
    steady = n - 1
    return {
        "wall_s": wall_s,
        "first_frame_model_s": run.first_model_seconds,
        "model_s": p.model_seconds,
        "demo_fps": steady / steady_wall if steady > 0 and steady_wall > 0 else float("nan"),
        "model_fps": steady / steady_model if steady > 0 and steady_model > 0 else float("nan"),
        "writer_s_per_frame": run.writer_seconds / steady if steady > 0 else float("nan"),
        "frames_per_model_call": 1,  # streaming (videos) and images: one call per output frame
    }


def _rest_joints_fn(body):
    """betas [nb] -> rest joints [24 3] of that shape (the body model at zero pose)."""
    from siam_jax.inference.smoothing import body_forward

    zeros = np.zeros((23, 3), np.float32)

    def rest(betas):
        out = body_forward(body, np.asarray(betas, np.float32), zeros, zeros[0], zeros[0])
        return np.asarray(out.joints[:24])

    return rest


def run_input(predictor: Predictor, path: Path, out_dir: Path, opts: DemoOptions) -> dict:
    """The demo on one input (image, folder of images or video) into ``out_dir``; its summary."""
    source = media.open_source(path)
    (out_dir / "params").mkdir(parents=True, exist_ok=True)
    if opts.save_obj:
        (out_dir / "meshes").mkdir(exist_ok=True)
    run = _Run(predictor, source, out_dir, opts)
    start = time.perf_counter()
    from tqdm import tqdm

    from siam_jax.inference.pipeline import run_pipeline

    predictor.model_seconds = 0.0
    predictor.model_calls = 0
    try:
        with tqdm(total=source.num_frames, unit="frame", desc=path.name) as run.progress:
            frames = enumerate(media.iter_frames(source))
            # The first frame alone, all stages in turn: it compiles the model and the renderer,
            # so the pipelined rest measures the steady state.
            first = next(frames, None)
            if first is not None:
                run.write(run.model(first))
                run.first_written_time = time.perf_counter()
            run_pipeline(frames, run.model, run.write, maxsize=opts.queue_size)
    except BaseException:
        if run.writer is not None:
            run.writer.abort()
        raise
    summary = run.finish(time.perf_counter() - start)
    if summary["frames"] and len(summary["frames_without_people"]) == summary["frames"]:
        logging.warning("no person was detected in any of the %d frames of %s",
                        summary["frames"], path)  # fmt: skip
    write_json(outputs.summary_path(out_dir, path), summary)  # last: marks the input as finished
    return summary


def run_demo(
    config,
    checkpoint: str,
    input_path: str,
    output_dir: str,
    *,
    step: int | None = None,
    options: DemoOptions | None = None,
) -> dict:
    """Runs the demo; returns a summary (per input: frames, IDs, speed; skipped inputs).

    A single input's summary is returned as is; a folder of videos gives ``{"inputs": [...],
    "skipped": [...]}``, each video's outputs in ``output_dir/<video stem>/``.
    """
    from siam_jax.checkpoints import restore_model

    opts = options or DemoOptions()
    inputs, batch = media.list_inputs(input_path)
    for p in inputs:  # clear errors for missing / unreadable inputs before the model loads
        media.open_source(p)
    out_dirs = {p: outputs.outputs_dir(output_dir, p, batch) for p in inputs}
    todo = [p for p in inputs if not outputs.summary_path(out_dirs[p], p).exists()]
    skipped = [str(p) for p in inputs if p not in todo]
    for p in skipped:
        logging.warning("%s: finished outputs found, skipped (delete its .summary.json to redo)", p)
    if not todo:
        return {"inputs": [], "skipped": skipped}
    model, restored_step = restore_model(config, checkpoint, step)
    predictor = Predictor(model, config, opts.camera)
    summaries = []
    for p in todo:
        s = run_input(predictor, p, out_dirs[p], opts)
        summaries.append({"checkpoint_step": restored_step, "weights": model.weights_source,
                          "camera": predictor.camera.describe(), **s})  # fmt: skip
    if not batch:
        return summaries[0]
    return {"checkpoint_step": restored_step, "weights": model.weights_source,
            "inputs": summaries, "skipped": skipped}  # fmt: skip
