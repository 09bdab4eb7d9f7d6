"""A tiny BEDLAM in its per-scene SMPL label npz form (data_processing/df_full_body_smpl.py keys)
with png frames.

Train scene ``20221010_3-10_500_batch01hand_6fps``: ``seq_000000`` frames 0, 5, 10 with a male and
a female body (subjects ``rp_a``, ``rp_b``), ``seq_000001`` frame 0 with two neutral bodies, one of
them with a non-zero 11th beta. Train scene ``20221018_3_250_batch01hand_closeup_suburb_a_6fps``:
one frame whose png is stored landscape and whose labels are for the image turned 90 degrees
clockwise (portrait). Validation scene ``20221019_1_250_highbmihand_6fps``: one frame.
The labels are made as df_full_body_smpl.py makes them: the camera-frame body is
``SMPL(pose_cam, shape, trans_cam) + cam_ext[:3, 3]`` and ``gtkps`` its 45 joints projected.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.spatial.transform import Rotation

from tests.fixtures_official import _run, write_body_models, write_image

W, H = 64, 48  # landscape frames (1280x720 scaled down)
SCENE_A = "20221010_3-10_500_batch01hand_6fps"
SCENE_CLOSEUP = "20221018_3_250_batch01hand_closeup_suburb_a_6fps"
SCENE_VAL = "20221019_1_250_highbmihand_6fps"


def cam_int(width: int, height: int, focal_mm: float = 28.0) -> np.ndarray:
    """df_full_body_smpl.py get_cam_int: f / sensor x (W/2) x 2, principal point (W/2, H/2);
    sensor 36 x 20.25 mm (swapped for closeups)."""
    sw, sh = (36.0, 20.25) if width >= height else (20.25, 36.0)
    return np.array([[focal_mm / sw * width, 0, width / 2], [0, focal_mm / sh * height, height / 2],
                     [0, 0, 1.0]])  # fmt: skip


def _row(rng, models, gender, betas, position, k, cam_trans):
    orient = Rotation.from_euler("y", rng.uniform(-1, 1)) * Rotation.from_euler("x", np.pi)
    pose = np.concatenate([orient.as_rotvec(), rng.normal(0, 0.15, 69)])
    trans_cam = np.asarray(position) - cam_trans
    out = _run(models[gender], np.asarray(betas[:10])[None], pose[3:].reshape(1, 23, 3),
               pose[:3][None], trans_cam[None])  # fmt: skip
    joints = out["joints45"][0] + cam_trans
    uv1 = (joints / joints[:, 2:]) @ k.T
    return {"pose_cam": pose, "shape": np.asarray(betas), "trans_cam": trans_cam,
            "gtkps": uv1, "vertices": out["vertices"][0] + cam_trans}  # fmt: skip


def _scene(path, rows_spec, rng, models, width, height, ext_t):
    k = cam_int(width, height)
    ext = np.eye(4)
    ext[:3, :3] = Rotation.from_euler("x", 0.1).as_matrix()  # BEDLAM's cam_rotmat
    ext[:3, 3] = ext_t
    rows = []
    for imgname, gender, sub, betas, position in rows_spec:
        row = _row(rng, models, gender, betas, position, k, ext[:3, 3])
        row.update(imgname=imgname, gender=gender, sub=sub, cam_int=k, cam_ext=ext)
        rows.append(row)
    n = len(rows)
    data = {
        "imgname": np.array([r["imgname"] for r in rows]),
        "center": np.full((n, 2), 20.0), "scale": np.full(n, 0.3),
        "pose_cam": np.stack([r["pose_cam"] for r in rows]),
        "pose_world": np.stack([r["pose_cam"] for r in rows]),
        "shape": np.stack([r["shape"] for r in rows]),
        "trans_cam": np.stack([r["trans_cam"] for r in rows]),
        "trans_world": np.stack([r["trans_cam"] for r in rows]),
        "gtkps": np.stack([r["gtkps"] for r in rows]),
        "cam_int": np.stack([r["cam_int"] for r in rows]),
        "cam_ext": np.stack([r["cam_ext"] for r in rows]),
        "gender": np.array([r["gender"] for r in rows]),
        "sub": np.array([r["sub"] for r in rows]),
        "motion_info": np.array([["CMU/01/01_01", "walk"]] * n),
    }  # fmt: skip
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **data)
    return rows


def write_bedlam(manual: str) -> dict:
    rng = np.random.default_rng(7)
    models = write_body_models(os.path.join(manual, "body_models"))
    b10 = [0.0] * 10
    spec_a = []
    for t in (0, 5, 10):
        name = f"seq_000000/seq_000000_{t:04d}.png"
        male = [*rng.normal(0, 1, 10), 0.0]
        female = [*rng.normal(0, 1, 10), 0.0]
        spec_a += [(name, "male", "rp_a", male, [-0.6, 0.2, 6.0 + 0.1 * t]),
                   (name, "female", "rp_b", female, [0.7, 0.3, 7.0])]  # fmt: skip
    spec_a += [("seq_000001/seq_000001_0000.png", "neutral", "rp_c", [*b10[:9], 0.4, 0.0],
                [0.0, 0.1, 5.0]),
               ("seq_000001/seq_000001_0000.png", "neutral", "rp_d", [*b10[:9], 0.1, 0.5],
                [1.0, 0.1, 8.0])]  # fmt: skip
    truth = {"models": models}
    truth[SCENE_A] = _scene(os.path.join(manual, "processed_labels", f"{SCENE_A}.npz"), spec_a,
                            rng, models, W, H, [0.1, -0.2, 0.3])  # fmt: skip
    # Closeup: the labels are for the portrait image (H x W), the png is landscape.
    truth[SCENE_CLOSEUP] = _scene(
        os.path.join(manual, "processed_labels", f"{SCENE_CLOSEUP}.npz"),
        [("seq_000000/seq_000000_0000.png", "female", "rp_e", [*rng.normal(0, 1, 10), 0.0],
          [0.0, 0.0, 4.0])], rng, models, H, W, [0.0, 0.0, 0.0])  # fmt: skip
    truth[SCENE_VAL] = _scene(
        os.path.join(manual, "validation_labels", f"{SCENE_VAL}.npz"),
        [("seq_000003/seq_000003_0000.png", "male", "rp_f", [*rng.normal(0, 1, 10), 0.0],
          [0.0, 0.2, 6.0])], rng, models, W, H, [0.0, 0.0, 0.5])  # fmt: skip
    for scene, folder in ((SCENE_A, "images"), (SCENE_CLOSEUP, "images"),
                          (SCENE_VAL, "validation_images")):  # fmt: skip
        for name in sorted({r["imgname"] for r in truth[scene]}):
            write_image(os.path.join(manual, folder, scene, "png", name), W, H, seed=len(name))
    return truth
