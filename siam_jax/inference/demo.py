"""The demo: meshes for every person in an image, a folder of images or a video.

Video frames stream through a sliding window of the model's clip length: each new frame is
predicted as the last frame of the window of the ``clip_len`` most recent frames (the first frame
is repeated until the window fills), so the video model sees its past but never waits for the
future. Person IDs come from ``Tracker`` (3D distances between consecutive frames).

Outputs in ``output_dir``: the overlay video (``<input>_overlay.mp4``) or one overlay PNG per
image, ``params/<frame>.npz`` (SMPL parameters in axis-angle, camera translations, IDs, scores,
intrinsics of the frame) and, with ``save_obj``, ``meshes/<frame>_id<k>.obj``.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
from absl import logging
from tqdm import tqdm

from siam_jax.inference import media
from siam_jax.inference.predictor import FramePrediction, Predictor
from siam_jax.inference.tracking import Tracker

# A qualitative palette (matplotlib tab10), one colour per person ID.
PALETTE = np.array(
    [
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    ],
    dtype=np.float32,
) / 255.0  # fmt: skip


def overlay(
    image: np.ndarray, pred: FramePrediction, ids: np.ndarray, faces: np.ndarray, alpha: float = 0.8
) -> np.ndarray:
    """The frame with each person's mesh drawn in its ID colour and labelled ``ID k``."""
    from PIL import Image, ImageDraw

    from siam_jax.render import render_meshes

    out = image.astype(np.float32) / 255.0
    if len(ids):
        h, w = image.shape[:2]
        r = render_meshes(
            np.asarray(pred.vertices, np.float32),
            faces,
            np.asarray(pred.intrinsics, np.float32),
            h,
            w,
            colors=PALETTE[np.asarray(ids) % len(PALETTE)],
        )
        person = np.asarray(r.person)
        mask = (person >= 0)[..., None]
        out = np.where(mask, alpha * np.asarray(r.image) + (1 - alpha) * out, out)
    pil = Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for pid, kp in zip(ids, pred.keypoints_2d, strict=True):
        head = kp[15]  # SMPL joint 15: head (smplx joint_names)
        x, y = float(head[0]), float(head[1]) - 14
        colour = tuple(int(255 * c) for c in PALETTE[int(pid) % len(PALETTE)])
        draw.text((x, y), f"ID {int(pid)}", fill=colour)
    return np.asarray(pil)


def run_demo(
    config,
    checkpoint: str,
    input_path: str,
    output_dir: str,
    *,
    step: int | None = None,
    save_obj: bool = False,
) -> dict:
    """Runs the demo; returns a summary (frames, frames without people, IDs seen, outputs)."""
    from siam_jax.checkpoints import restore_model

    source = media.open_source(input_path)  # clear errors for missing / unreadable inputs first
    out_dir = Path(output_dir)
    (out_dir / "params").mkdir(parents=True, exist_ok=True)
    if save_obj:
        (out_dir / "meshes").mkdir(exist_ok=True)
    model, restored_step = restore_model(config, checkpoint, step)
    predictor = Predictor(model, config)
    tracker = Tracker()
    window: collections.deque = collections.deque(maxlen=predictor.clip_len)
    writer = None
    if source.kind == "video":
        writer = media.VideoWriter(out_dir / f"{source.path.stem}_overlay.mp4", source.fps)
    summary = {
        "checkpoint_step": restored_step,
        "frames": 0,
        "frames_without_people": [],
        "ids": set(),
    }
    try:
        for frame in tqdm(media.iter_frames(source), total=source.num_frames, unit="frame"):
            if source.kind != "video":
                window.clear()  # unrelated images: no temporal context
            window.append(frame.image)
            clip = [window[0]] * (predictor.clip_len - len(window)) + list(window)
            pred = predictor(clip)[-1]
            ids = tracker.update(pred.cam_t)
            summary["frames"] += 1
            summary["ids"].update(int(i) for i in ids)
            if not len(ids):
                summary["frames_without_people"].append(frame.name)
                logging.warning(
                    "%s: no person detected (best centre score %.3f < threshold %.3f)",
                    frame.name,
                    pred.max_score,
                    float(model.threshold),
                )
            media.write_npz(
                out_dir / "params" / f"{frame.name}.npz",
                ids=ids,
                scores=pred.scores,
                global_orient=pred.global_orient,
                body_pose=pred.body_pose,
                betas=pred.betas,
                cam_t=pred.cam_t,
                keypoints_2d=pred.keypoints_2d,
                keypoints_3d=pred.keypoints_3d,
                intrinsics=pred.intrinsics,
            )
            if save_obj:
                for pid, verts in zip(ids, pred.vertices, strict=True):
                    media.write_obj(
                        out_dir / "meshes" / f"{frame.name}_id{int(pid)}.obj",
                        verts,
                        predictor.faces,
                    )
            drawn = overlay(frame.image, pred, ids, predictor.faces)
            if writer is not None:
                writer.write(drawn)
            else:
                media.write_image(out_dir / f"{frame.name}_overlay.png", drawn)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    if summary["frames"] and len(summary["frames_without_people"]) == summary["frames"]:
        logging.warning(
            "no person was detected in any of the %d frames of %s", summary["frames"], input_path
        )
    summary["ids"] = sorted(summary["ids"])
    return summary
