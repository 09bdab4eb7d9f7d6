"""A tiny MPI-INF-3DHP in the official training layout: ``S*/Seq*/annot.mat`` (scipy.io,
cells per camera), ``camera.calibration`` (the Skeletool text format), extracted frames
``imageFrames/video_<c>/frame_%06d.jpg`` (numbered from 1, as ffmpeg writes them) and a
NeuralAnnot side-car in world coordinates.

S1/Seq1 (train): 21 frames, 14 cameras calibrated and annotated, frames extracted for cameras 0
and 1 only. S8/Seq1 (validation): 11 frames, camera 0 extracted. The world joints are the
procedural body's SMPL joints where the dataset joint is an SMPL joint (limbs, neck, hands) and
points near the pelvis elsewhere; S1 frame 10's skeleton is scaled by 1.3 (its fit is rejected),
frame 20 has no fit. The world is z-up; cameras look at the origin (tests/fixtures_h36m.py).
"""

from __future__ import annotations

import json
import os

import numpy as np
from scipy import io as sio

from siam_jax.body import joint_sets
from tests.fixtures_h36m import look_at, world_fit
from tests.fixtures_official import _run, write_body_models, write_image

W, H = 96, 96
NAMES28 = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand", "right_clavicle",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee",
    "left_ankle", "left_foot", "left_toe", "right_hip", "right_knee", "right_ankle", "right_foot",
    "right_toe",
)  # fmt: skip
# 28-joint names that are SMPL joints (their superset point is smpl_<name>).
SMPL_NAMED = ("neck", "left_shoulder", "left_elbow", "left_wrist", "left_hand", "right_shoulder",
              "right_elbow", "right_wrist", "right_hand", "left_knee", "left_ankle",
              "right_knee", "right_ankle")  # fmt: skip


def cameras(rng, n: int = 14) -> list[dict]:
    out = []
    for c in range(n):
        a = np.deg2rad(360.0 * c / n)
        centre = np.array([4.0 * np.sin(a), -4.0 * np.cos(a), 1.0 + 0.05 * c])
        r = look_at(centre)
        k = np.array([[110.0 + c, 0, W / 2 + rng.normal()], [0, 111.0 + c, H / 2 + rng.normal()],
                      [0, 0, 1.0]])  # fmt: skip
        out.append({"R": r, "T_mm": -(r @ centre) * 1000.0, "k": k})
    return out


def calibration_text(cams: list[dict]) -> str:
    """The Skeletool calibration file: a header, then 7 lines per camera (label, payload from
    character 11 on, as SPIN's read_calibration slices it)."""
    lines = ["Skeletool Camera Calibration File V1.0"]
    for c, cam in enumerate(cams):
        intr = np.eye(4)
        intr[:3, :3] = cam["k"]
        ext = np.eye(4)
        ext[:3, :3], ext[:3, 3] = cam["R"], cam["T_mm"]
        lines += [
            f"name          {c}",
            "  sensor      10 10",
            f"  size        {W} {H}",
            "  animated    0",
            "  intrinsic   " + " ".join(f"{v:.10g}" for v in intr.ravel()) + " ",
            "  extrinsic   " + " ".join(f"{v:.10g}" for v in ext.ravel()) + " ",
            "  radial      0",
        ]
    return "\n".join(lines) + "\n"


def _cells(arrays: list[np.ndarray]) -> np.ndarray:
    cells = np.empty((len(arrays), 1), dtype=object)
    for i, a in enumerate(arrays):
        cells[i, 0] = a
    return cells


def write_sequence(manual, model, rng, subject, seq, frames, extracted, truth) -> None:
    folder = os.path.join(manual, f"S{subject}", f"Seq{seq}")
    cams = cameras(rng)
    fits, world = {}, []
    for t in range(frames):
        fit = world_fit(rng, t)
        joints = _run(model, np.asarray(fit["shape"])[None],
                      np.asarray(fit["pose"][3:]).reshape(1, 23, 3),
                      np.asarray(fit["pose"][:3])[None], np.asarray(fit["trans"]).reshape(1, 3),
                      )["joints"][0]  # fmt: skip
        j28 = joints[0] + rng.normal(0, 0.1, (28, 3))
        for name in SMPL_NAMED:
            j28[NAMES28.index(name)] = joints[joint_sets.SMPL_JOINT_NAMES.index(name)]
        if subject == 1 and t == 10:
            j28 = j28[4] + 1.3 * (j28 - j28[4])
        world.append(j28)
        if not (subject == 1 and t == 20):
            fits[str(t)] = fit
    world = np.asarray(world)  # [T 28 3] metres
    annot2, annot3 = [], []
    for cam in cams:
        cam_mm = world * 1000.0 @ cam["R"].T + cam["T_mm"]
        uv = cam_mm[..., :2] / cam_mm[..., 2:] * np.diag(cam["k"])[:2] + cam["k"][:2, 2]
        annot3.append(cam_mm.reshape(frames, 84))
        annot2.append(uv.reshape(frames, 56))
    os.makedirs(folder, exist_ok=True)
    sio.savemat(os.path.join(folder, "annot.mat"), {
        "annot2": _cells(annot2), "annot3": _cells(annot3), "univ_annot3": _cells(annot3),
        "cameras": np.arange(len(cams))[None], "frames": np.arange(frames)[:, None],
    })  # fmt: skip
    with open(os.path.join(folder, "camera.calibration"), "w") as f:
        f.write(calibration_text(cams))
    for c in extracted:
        for t in range(frames):
            write_image(os.path.join(folder, "imageFrames", f"video_{c}", f"frame_{t + 1:06d}.jpg"),
                        W, H, seed=t + 100 * c)  # fmt: skip
    truth["fits"].setdefault(str(subject), {})[str(seq)] = fits
    truth["cams"][(subject, seq)] = cams
    truth["annot3"][(subject, seq)] = annot3
    truth["annot2"][(subject, seq)] = annot2


def write_mpi_inf(manual: str) -> dict:
    rng = np.random.default_rng(3)
    model = write_body_models(os.path.join(manual, "body_models"), genders=("neutral",))["neutral"]
    truth = {"fits": {}, "cams": {}, "annot3": {}, "annot2": {}, "model": model}
    write_sequence(manual, model, rng, 1, 1, 21, (0, 1), truth)
    write_sequence(manual, model, rng, 8, 1, 11, (0,), truth)
    with open(os.path.join(manual, "MPI-INF-3DHP_SMPL_NeuralAnnot.json"), "w") as f:
        json.dump(truth["fits"], f)
    return truth
