"""Writers of tiny datasets in the *official* layouts of AGORA, 3DPW and CMU-Panoptic.

Builder and evaluation tests use them with the procedural body model. Each writer returns the
ground truth it wrote so tests can compare against it. The AGORA ground truth is made with an
independent, step-by-step copy of agora_evaluation projection.py: project2d (explicit rotation
matrices, not siam_jax.data.conversions), so the builder's conversion is checked against it.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

# --------------------------------------------------------------------------- shared


def write_body_models(folder: str, genders=("neutral", "male", "female")) -> dict:
    """Procedural SMPL-compatible models saved as ``SMPL_<GENDER>.npz``; seeds differ per gender
    so that picking the wrong gender shows up in the joints."""
    from siam_jax.body import make_procedural_body_model, save_body_model

    os.makedirs(folder, exist_ok=True)
    models = {}
    for seed, gender in enumerate(("neutral", "male", "female")):
        if gender not in genders:
            continue
        model = make_procedural_body_model(seed=seed)
        save_body_model(model, os.path.join(folder, f"SMPL_{gender.upper()}.npz"))
        models[gender] = model
    return models


def write_image(path: str, width: int, height: int, seed: int = 0) -> None:
    """A random RGB image; the format follows the extension (.png / .jpg)."""
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _run(model, betas, body_pose, global_orient, transl):
    from scipy.spatial.transform import Rotation

    # Matrices [... 1 3 3]: a batch of 3 axis-angles ([3 3]) would read as one matrix.
    go = np.asarray(global_orient, np.float64)
    go = Rotation.from_rotvec(go.reshape(-1, 3)).as_matrix().reshape(*go.shape[:-1], 1, 3, 3)
    out = model(
        betas=np.asarray(betas, np.float32),
        body_pose=np.asarray(body_pose, np.float32),
        global_orient=go.astype(np.float32),
        transl=np.asarray(transl, np.float32),
    )
    return {k: np.asarray(getattr(out, k), np.float64) for k in ("vertices", "joints", "joints45")}


def ry(deg: float) -> np.ndarray:
    """Right-handed rotation about y (the matrix cv2.Rodrigues([0, a, 0]) gives)."""
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rx(deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def pinhole(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    p = points / points[..., 2:3]
    return np.stack([k[0, 0] * p[..., 0] + k[0, 2], k[1, 1] * p[..., 1] + k[1, 2]], -1)


def as_arrays(example: dict) -> dict:
    """A ``tfds.data_source`` example with the person sequence as arrays, text as str."""
    out = dict(example)
    out["persons"] = {k: np.asarray(v) for k, v in example["persons"].items()}
    for key in ("sequence_id", "image_name"):
        if isinstance(out[key], bytes):
            out[key] = out[key].decode()
    return out


# --------------------------------------------------------------------------- 3DPW


def write_pw3d(manual: str, models: dict, num_frames: int = 3, width: int = 96, height: int = 128):
    """``sequenceFiles/test/courtyard_backpack_00.pkl`` (2 actors, m and f; actor 1 has
    campose_valid 0 at frame 1) + ``validation/downtown_walking_00.pkl`` (1 actor), with images.

    Returns ``{sequence: {'data': dict written, 'joints_cam': [actor][frame] (24,3)}}`` where the
    camera-frame joints come from world-frame SMPL moved by ``cam_poses`` (3DPW's own definition).
    """
    rng = np.random.default_rng(1)
    k = np.array([[120.0, 0, width / 2 - 0.5], [0, 120.0, height / 2 - 0.5], [0, 0, 1]])
    truth = {}
    specs = [
        ("test", "courtyard_backpack_00", ["m", "f"]),
        ("validation", "downtown_walking_00", ["f"]),
    ]
    os.makedirs(os.path.join(manual, "sequenceFiles", "train"), exist_ok=True)
    for split, name, genders in specs:
        n_act = len(genders)
        poses = [rng.normal(0, 0.2, (num_frames, 72)) for _ in range(n_act)]
        trans = [
            np.array([[1.0 * a - 0.5, 0.1 * t, 0.05 * t] for t in range(num_frames)])
            for a in range(n_act)
        ]
        betas = [rng.normal(0, 1, 300 if a == 0 else 10) for a in range(n_act)]
        if len(betas[0]) == 300:
            betas[0][10:] = 0.0  # as in the 300-dim files: entries 10: are zero
        cam_poses = np.zeros((num_frames, 4, 4))
        for t in range(num_frames):
            # Camera looking at the actors: y flipped (SMPL y-up -> OpenCV y-down), a turn,
            # 4 m away.
            cam_poses[t, :3, :3] = rx(180.0) @ ry(10.0 * t - 5.0)
            cam_poses[t, :3, 3] = [0.0, 0.0, 4.0]
            cam_poses[t, 3, 3] = 1.0
        valid = [np.ones(num_frames, bool) for _ in range(n_act)]
        if n_act > 1:
            valid[1][1] = False
        data = {
            "sequence": name,
            "betas": betas,
            "betas_clothed": [b[:10] for b in betas],
            "poses": poses,
            "trans": trans,
            "genders": genders,
            "cam_poses": cam_poses,
            "campose_valid": valid,
            "cam_intrinsics": k,
            "img_frame_ids": np.arange(num_frames),
            "poses2d": [np.zeros((num_frames, 3, 18)) for _ in range(n_act)],
            "jointPositions": [np.zeros((num_frames, 72)) for _ in range(n_act)],
            "v_template_clothed": [None] * n_act,
            "texture_maps": [None] * n_act,
            "poses_60Hz": poses,
            "trans_60Hz": trans,
        }
        joints_cam = []
        for a, g in enumerate(genders):
            model = (
                models["male" if g == "m" else "female"] if "male" in models else models["neutral"]
            )
            world = _run(
                model,
                np.broadcast_to(betas[a][:10], (num_frames, 10)),
                poses[a][:, 3:].reshape(-1, 23, 3),
                poses[a][:, :3],
                trans[a],
            )["joints"]
            cam = np.einsum("tij,tkj->tki", cam_poses[:, :3, :3], world) + cam_poses[:, None, :3, 3]
            joints_cam.append(cam)
        folder = os.path.join(manual, "sequenceFiles", split)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name + ".pkl"), "wb") as f:
            pickle.dump(data, f, protocol=2)
        for t in range(num_frames):
            write_image(
                os.path.join(manual, "imageFiles", name, f"image_{t:05d}.jpg"),
                width,
                height,
                seed=t,
            )
        truth[name] = {"data": data, "joints_cam": joints_cam, "intrinsics": k}
    return truth


# --------------------------------------------------------------------------- AGORA


def unreal2cv(p) -> np.ndarray:
    """projection.py: unreal2cv2, x -> y, y -> z, z -> x, then y negated."""
    p = np.asarray(p, np.float64)
    return np.array([p[1], -p[2], p[0]])


def agora_project(joints_local, yaw, xyz_cm, cam_xyz_cm, cam_yaw, pitch, ground, focal, size):
    """projection.py: project2d, step by step; returns (camera-frame 3D, pixels at ``size``)."""
    j = joints_local * np.array([1.0, -1.0, -1.0])  # smpl2opencv
    j = j @ ry(yaw - 90.0).T + unreal2cv(np.asarray(xyz_cm) / 100.0)
    cam = unreal2cv(np.asarray(cam_xyz_cm) / 100.0) + np.asarray(ground)
    j = (j - cam) @ ry(-cam_yaw).T
    j = j @ rx(pitch).T
    w, h = size
    k = np.array([[focal / 36.0 * w, 0, w / 2], [0, focal / 20.25 * h, h / 2], [0, 0, 1]])
    return j, pinhole(j, k)


def _agora_place(cam_xyz_cm, cam_yaw, pitch, ground, target_cam):
    """Unreal XYZ (cm) putting the fit origin at ``target_cam`` in the camera frame."""
    world_cv = ry(-cam_yaw).T @ rx(pitch).T @ np.asarray(target_cam) + (
        unreal2cv(np.asarray(cam_xyz_cm) / 100.0) + np.asarray(ground)
    )
    return np.array([world_cv[2], world_cv[0], -world_cv[1]]) * 100.0  # cv -> unreal


def write_agora(
    manual: str, model, resolution=(1280, 720), drop_fit: bool = False, drop_image: bool = False
):
    """``SMPL/train_0_withjv.pkl`` (2 images), ``SMPL/validation_0_withjv.pkl`` (1 image), the
    fits under ``smpl_gt/``, images under ``images_<W>x<H>/{train_0,validation,test}/``.

    Image 0 of train is a default-camera scene (f 28, camX/Y/Z/Yaw, ground plane -1.7 m) with an
    adult and a kid; image 1 a 'cam01' fixed camera (f 18, pitch 30) with one adult whose
    occlusion is 95 % (invalid). Validation: one adult at the default camera.
    Returns ``{imgPath: {'persons': [...dict of what was written...]}}``.
    """
    import pandas as pd

    rng = np.random.default_rng(2)
    w, h = resolution
    truth = {}

    def person(img_cfg, target, yaw, kid, occ, name):
        nb = 11 if kid else 10
        fit = {
            "root_pose": rng.normal(0, 0.3, (1, 3)).astype(np.float32),
            "body_pose": rng.normal(0, 0.2, (1, 69)).astype(np.float32),
            "betas": rng.normal(0, 1, (1, nb)).astype(np.float32),
            "translation": rng.normal(0, 0.1, (1, 3)).astype(np.float32),
        }
        local = _run(
            model,
            fit["betas"][0, :10],
            fit["body_pose"].reshape(23, 3),
            fit["root_pose"][0],
            fit["translation"][0],
        )
        cam_xyz, cam_yaw, pitch, ground, focal = img_cfg
        xyz = _agora_place(cam_xyz, cam_yaw, pitch, ground, target)
        j3d, j2d = agora_project(
            local["joints45"], yaw, xyz, cam_xyz, cam_yaw, pitch, ground, focal, (3840, 2160)
        )
        v3d, _ = agora_project(
            local["vertices"], yaw, xyz, cam_xyz, cam_yaw, pitch, ground, focal, (3840, 2160)
        )
        rel = f"smpl_gt/trainset_fixture/{name}.obj"
        path = os.path.join(manual, rel.replace(".obj", ".pkl"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not (drop_fit and name == "adult_b"):
            with open(path, "wb") as f:
                pickle.dump(fit, f)
        return {
            "X": xyz[0],
            "Y": xyz[1],
            "Z": xyz[2],
            "Yaw": yaw,
            "gender": "female" if kid else "male",
            "kid": kid,
            "occlusion": occ,
            "isValid": 0 <= occ <= 90,
            "gt_path_smpl": rel,
            "gt_path_smplx": rel.replace("smpl_gt", "smplx_gt"),
            "gt_joints_2d": j2d,
            "gt_joints_3d": j3d,
            "gt_verts": v3d,
            "fit": fit,
        }

    default_cam = ((-300.0, 150.0, 0.0), 30.0, 0.0, (0.0, -1.7, 0.0), 28.0)
    cam01 = ((400.0, 225.0, 265.0), -135.0, 30.0, (0.0, 0.0, 0.0), 18.0)
    images = {
        ("train", "train_0"): [
            (
                "ag_trainset_renderpeople_bfh_flowers_5_15_00001.png",
                default_cam,
                [
                    ((0.4, 0.2, 6.0), 120.0, False, 10.0, "adult_a"),
                    ((-0.8, 0.6, 8.0), 200.0, True, 30.0, "kid_a"),
                ],
            ),
            (
                "ag_trainset_renderpeople_bfh_archviz_5_10_cam01_00002.png",
                cam01,
                [((0.0, 0.3, 5.0), 45.0, False, 95.0, "adult_b")],
            ),
        ],
        ("validation", "validation_0"): [
            (
                "ag_validationset_renderpeople_bfh_flowers_5_15_00003.png",
                default_cam,
                [((0.2, 0.3, 7.0), 300.0, False, 0.0, "adult_c")],
            ),
        ],
    }
    for (_split, stem), rows in images.items():
        records = []
        for img_name, cfg, people in rows:
            ps = [person(cfg, *spec) for spec in people]
            rec = {k: [p[k] for p in ps] for k in ps[0] if k != "fit"}
            rec.update(
                imgPath=img_name, camX=cfg[0][0], camY=cfg[0][1], camZ=cfg[0][2], camYaw=cfg[1]
            )
            records.append(rec)
            truth[img_name] = {"persons": ps, "focal": cfg[4]}
            file_name = (
                img_name
                if resolution == (3840, 2160)
                else img_name.replace(".png", f"_{w}x{h}.png")
            )
            if not (drop_image and img_name.endswith("00002.png")):
                write_image(os.path.join(manual, f"images_{w}x{h}", stem, file_name), w, h)
        os.makedirs(os.path.join(manual, "SMPL"), exist_ok=True)
        pd.DataFrame.from_records(records).to_pickle(
            os.path.join(manual, "SMPL", f"{stem}_withjv.pkl")
        )
    write_image(
        os.path.join(manual, f"images_{w}x{h}", "test", f"ag_testset_x_00009_{w}x{h}.png"), w, h
    )
    return truth


# --------------------------------------------------------------------------- CMU-Panoptic


def write_panoptic(manual: str, width: int = 832, height: int = 512):
    """``annotations/160422_haggling1.pkl``: 2 frames of camera 00_16 with 2 persons each, and
    ``annotations/160906_pizza1.pkl``: 1 frame with 1 person; images under ``images/``.
    2D = exact pinhole projection of the 3D joints with the returned K (no distortion)."""
    rng = np.random.default_rng(3)
    k = np.array([[560.0, 0, 410.0], [0, 560.0, 260.0], [0, 0, 1]])
    truth = {"intrinsics": k, "annotations": {}}
    for seq, frames, npers in (
        ("160422_haggling1-00_16", (2000, 2001), 2),
        ("160906_pizza1-00_30", (500,), 1),
    ):
        anns = []
        for frame in frames:
            kp3 = np.zeros((npers, 24, 4))
            for p in range(npers):
                centre = np.array([0.8 * p - 0.4, 0.1, 3.5 + p])
                kp3[p, :, :3] = centre + rng.normal(0, 0.3, (24, 3))
                kp3[p, :, 3] = 1.0
                kp3[p, rng.integers(0, 24, 3), 3] = 0.0  # a few joints missing
            uv = pinhole(kp3[..., :3], k)
            kp2 = np.concatenate([uv, kp3[..., 3:4]], -1)
            boxes = np.concatenate([uv.min(1), uv.max(1), np.ones((npers, 1))], -1)
            filename = f"{seq}_{frame:08d}.jpg"
            anns.append(
                {
                    "filename": filename,
                    "width": width,
                    "height": height,
                    "bboxes": boxes.astype(np.float32),
                    "kpts2d": kp2.astype(np.float32),
                    "kpts3d": kp3.astype(np.float32),
                }
            )
            write_image(os.path.join(manual, "images", filename), width, height, seed=frame)
        os.makedirs(os.path.join(manual, "annotations"), exist_ok=True)
        with open(os.path.join(manual, "annotations", seq.split("-")[0] + ".pkl"), "wb") as f:
            pickle.dump(anns, f)
        truth["annotations"][seq] = anns
    return truth


def file_tree(root: str) -> set[str]:
    """Every file and folder below ``root``, relative to it (what "nothing half-written is left
    behind" compares before and after a failed build)."""
    out = set()
    for folder, dirs, names in os.walk(root):
        out.update(os.path.relpath(os.path.join(folder, n), root) for n in dirs + names)
    return out
