"""What the demo draws: the meshes over the frame in each track's colour, and a side view.

Both render with ``siam_jax.render.render_meshes`` through the frame's own intrinsics (the
camera of ``--fov`` / ``--intrinsics``), so the overlay shows exactly what the stored
parameters project to.
"""

from __future__ import annotations

import numpy as np

from siam_jax.inference.predictor import FramePrediction

# A qualitative palette (matplotlib tab10), one colour per person ID.
PALETTE = np.array(
    [
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    ],
    dtype=np.float32,
) / 255.0  # fmt: skip
SIDE_BACKGROUND = 0.92  # light grey behind the side view


def _render(vertices, faces, intrinsics, hw, ids, background=None):
    from siam_jax.render import render_meshes

    return render_meshes(
        np.asarray(vertices, np.float32),
        faces,
        np.asarray(intrinsics, np.float32),
        int(hw[0]),
        int(hw[1]),
        colors=PALETTE[np.asarray(ids) % len(PALETTE)],
        background=background,
        cull_back_faces=True,  # body meshes are closed: the same picture at half the work
    )


def overlay(
    image: np.ndarray, pred: FramePrediction, ids: np.ndarray, faces: np.ndarray, alpha: float = 0.8
) -> np.ndarray:
    """The frame with each person's mesh drawn in its ID colour and labelled ``ID k``."""
    from PIL import Image, ImageDraw

    out = image.astype(np.float32) / 255.0
    if len(ids):
        r = _render(pred.vertices, faces, pred.intrinsics, image.shape[:2], ids)
        mask = (np.asarray(r.person) >= 0)[..., None]
        out = np.where(mask, alpha * np.asarray(r.image) + (1 - alpha) * out, out)
    pil = Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for pid, kp in zip(ids, pred.joints_2d, strict=True):
        head = kp[15]  # SMPL joint 15: head (smplx joint_names)
        x, y = float(head[0]), float(head[1]) - 14
        colour = tuple(int(255 * c) for c in PALETTE[int(pid) % len(PALETTE)])
        draw.text((x, y), f"ID {int(pid)}", fill=colour)
    return np.asarray(pil)


def side_rotation(vertices: np.ndarray, angle_degrees: float = 90.0) -> np.ndarray:
    """The scene turned by ``angle`` about the vertical (camera y) axis through its centre.

    The centre is the mean of all vertices; seen through the same camera, a turn of +90 degrees
    shows the scene from its left (ROMP's and Multi-HMR's side view). [n v 3] -> [n v 3].
    """
    v = np.asarray(vertices, np.float64)
    centre = v.reshape(-1, 3).mean(0)
    a = np.radians(angle_degrees)
    # Rotation about y (camera frame, y down): x' = cos a x + sin a z, z' = -sin a x + cos a z.
    rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return ((v - centre) @ rot.T + centre).astype(np.float32)


def side_view(
    pred: FramePrediction, ids: np.ndarray, faces: np.ndarray, hw: tuple[int, int]
) -> np.ndarray:
    """[h w 3] uint8: the people seen from the side, same camera, grey background."""
    h, w = int(hw[0]), int(hw[1])
    background = np.full((h, w, 3), SIDE_BACKGROUND, np.float32)
    if not len(ids):
        return (background * 255).astype(np.uint8)
    r = _render(side_rotation(pred.vertices), faces, pred.intrinsics, hw, ids, background)
    return np.clip(np.asarray(r.image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
