"""A tiny Human3.6M in the json quartet of 3DMPPE / I2L-MeshNet with NeuralAnnot fits.

S1 has one action (2) and subaction (1) seen by cameras 1 and 2, frames 0..10 listed; images are
written for the frames every 5th-frame subsampling keeps (0, 5, 10), except camera 2 frame 10
(missing on purpose). The world 3D joints are the procedural body's H36M regressor applied to the
world fit (so the fit error is ~0), except frame 5, whose skeleton is scaled by 1.3 about the
pelvis (the fit is then rejected); frame 10 has no fit. S5-S8 are empty files; S9 (validation) has
camera 4, frames 0, 1 and 64 listed. The world is z-up (H36M), cameras look at the origin.
"""

from __future__ import annotations

import json
import os

import numpy as np
from scipy.spatial.transform import Rotation

from tests.fixtures_official import _run, write_body_models, write_image

W, H = 96, 80
FRAMES = tuple(range(11))


def _dump(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def look_at(centre: np.ndarray) -> np.ndarray:
    """World -> camera rotation (OpenCV axes) of a camera at ``centre`` looking at the origin,
    world z up."""
    z = -centre / np.linalg.norm(centre)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def cameras(rng) -> dict:
    out = {}
    for cam, angle in zip((1, 2, 3, 4), (0.0, 80.0, 170.0, 260.0), strict=True):
        a = np.deg2rad(angle)
        centre = np.array([4.5 * np.sin(a), -4.5 * np.cos(a), 1.2])
        r = look_at(centre)
        out[str(cam)] = {
            "R": r.tolist(),
            "t": (-(r @ centre) * 1000.0).tolist(),  # mm
            "f": [110.0 + cam, 111.0 + cam],
            "c": [W / 2 + rng.normal(0, 1), H / 2 + rng.normal(0, 1)],
        }
    return out


def world_fit(rng, frame: int) -> dict:
    """A standing neutral-SMPL fit in the z-up world (SMPL's y-up body turned by +90 deg about
    x), NeuralAnnot keys; ``trans`` nested as NeuralAnnot writes it."""
    orient = Rotation.from_euler("z", 0.3 * frame) * Rotation.from_euler("x", 90, degrees=True)
    pose = np.concatenate([orient.as_rotvec(), rng.normal(0, 0.15, 69)])
    return {
        "pose": pose.tolist(),
        "shape": rng.normal(0, 0.6, 10).tolist(),
        "trans": [[0.1 * frame / 10, 0.05, 0.9]],
    }


def _subject_images(subject: int, action: int, sub: int, cams, frames):
    images, anns = [], []
    for cam in cams:
        folder = f"s_{subject:02d}_act_{action:02d}_subact_{sub:02d}_ca_{cam:02d}"
        for frame in frames:
            i = len(images)
            images.append({"id": i, "file_name": f"{folder}/{folder}_{frame + 1:06d}.jpg",
                           "width": W, "height": H, "subject": subject,
                           "action_name": "Directions", "action_idx": action,
                           "subaction_idx": sub, "cam_idx": cam, "frame_idx": frame})  # fmt: skip
            anns.append({"id": i, "image_id": i, "keypoints_vis": [True] * 17,
                         "bbox": [10.0, 5.0, 40.0, 60.0]})  # fmt: skip
    return {"images": images, "annotations": anns}


def write_h36m(manual: str) -> dict:
    rng = np.random.default_rng(14)
    model = write_body_models(os.path.join(manual, "body_models"), genders=("neutral",))["neutral"]
    ann = os.path.join(manual, "annotations")
    truth = {"cameras": {}, "joints": {}, "fits": {}, "data": {}}
    for subject, cams, frames in ((1, (1, 2), FRAMES), (9, (4,), (0, 1, 64))):
        data = _subject_images(subject, 2, 1, cams, frames)
        cam_json = cameras(rng)
        joints, fits = {}, {}
        for frame in frames:
            fit = world_fit(rng, frame)
            out = _run(model, np.asarray(fit["shape"])[None],
                       np.asarray(fit["pose"][3:]).reshape(1, 23, 3),
                       np.asarray(fit["pose"][:3])[None],
                       np.asarray(fit["trans"]).reshape(1, 3))  # fmt: skip
            h36m = np.asarray(model.regress_h36m(out["vertices"].astype(np.float32)))[0]
            if subject == 1 and frame == 5:
                h36m = h36m[0] + 1.3 * (h36m - h36m[0])  # a taller skeleton: rejected
            joints[str(frame)] = (h36m * 1000.0).tolist()
            if not (subject == 1 and frame == 10):
                fits[str(frame)] = fit
        _dump(os.path.join(ann, f"Human36M_subject{subject}_data.json"), data)
        _dump(os.path.join(ann, f"Human36M_subject{subject}_camera.json"), cam_json)
        _dump(os.path.join(ann, f"Human36M_subject{subject}_joint_3d.json"), {"2": {"1": joints}})
        _dump(os.path.join(ann, f"Human36M_subject{subject}_SMPL_NeuralAnnot.json"),
              {"2": {"1": fits}})  # fmt: skip
        for image in data["images"]:
            keep = image["frame_idx"] % (5 if subject == 1 else 64) == 0
            missing = image["cam_idx"] == 2 and image["frame_idx"] == 10
            if keep and not missing:
                write_image(os.path.join(manual, "images", image["file_name"]), W, H,
                            seed=image["id"])  # fmt: skip
        truth["cameras"][subject] = cam_json
        truth["joints"][subject] = joints
        truth["fits"][subject] = fits
        truth["data"][subject] = data
    for subject in (5, 6, 7, 8):
        _dump(os.path.join(ann, f"Human36M_subject{subject}_data.json"),
              {"images": [], "annotations": []})  # fmt: skip
        _dump(os.path.join(ann, f"Human36M_subject{subject}_camera.json"), cameras(rng))
        _dump(os.path.join(ann, f"Human36M_subject{subject}_joint_3d.json"), {})
        _dump(os.path.join(ann, f"Human36M_subject{subject}_SMPL_NeuralAnnot.json"), {})
    truth["model"] = model
    return truth
