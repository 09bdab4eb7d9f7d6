"""Tiny datasets in the official COCO-format layouts (COCO-2017, CrowdPose, MPII/NeuralAnnot,
MuCo-3DHP/3DMPPE, PoseTrack18) and their pseudo-SMPL side-cars (NeuralAnnot, EFT).

Keys and nesting follow the originals (see siam_jax/data/builders/coco_family/*.py docstrings).
Each writer returns what it wrote, so tests compare the built dataset against these values with
their own arithmetic. Fits are made with the procedural body model (saved as SMPL_NEUTRAL.npz).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from scipy.spatial.transform import Rotation

from tests.fixtures_official import write_body_models, write_image

COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
CROWDPOSE_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head",
    "neck",
)  # fmt: skip
POSETRACK_NAMES = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
W, H = 160, 120


def frame_k(width: int = W, height: int = H) -> np.ndarray:
    """The 60-degree default camera, written out here (not imported from the builder)."""
    f = (max(width, height) / 2.0) / math.tan(math.radians(30.0))
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def _dump(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _keypoints(rng, n: int, box, labelled) -> list[float]:
    """COCO ``keypoints``: x, y, v triples inside ``box`` (v 2 where labelled, else 0, 0, 0)."""
    x0, y0, w, h = box
    out = []
    for j in range(n):
        if labelled[j]:
            out += [float(rng.uniform(x0, x0 + w)), float(rng.uniform(y0, y0 + h)), 2.0]
        else:
            out += [0.0, 0.0, 0.0]
    return out


def _upright(yaw: float) -> np.ndarray:
    return (Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", yaw)).as_rotvec()


def _fit(rng, k: np.ndarray, transl) -> dict:
    """A NeuralAnnot entry with camera ``k``."""
    pose = np.concatenate([_upright(rng.uniform(-1, 1)), rng.normal(0, 0.15, 69)])
    return {
        "smpl_param": {
            "pose": pose.tolist(),
            "shape": rng.normal(0, 0.5, 10).tolist(),
            "trans": list(map(float, transl)),
        },
        "cam_param": {"focal": [k[0, 0], k[1, 1]], "princpt": [k[0, 2], k[1, 2]]},
    }


def write_coco(manual: str, with_val: bool = True) -> dict:
    """COCO-2017: train images 1 (two persons, a crowd, a box-only person), 2 (one person),
    3 (listed but its file missing); val image 10. NeuralAnnot fits for annotations 101 (its own
    NeuralAnnot-style camera, focal 5000 x crop / 256), 102 (a camera equal to the frame's) and 103
    (the crowd: attached to nothing), ``null`` for 201. EFT fits for 101 and 201 by annotId."""
    rng = np.random.default_rng(0)
    write_body_models(os.path.join(manual, "body_models"), genders=("neutral",))
    for name in ("000000000001.jpg", "000000000002.jpg"):
        write_image(os.path.join(manual, "train2017", name), W, H, seed=len(name))
    all_kp = [True] * 17
    partial = [j in (0, 5, 6, 11, 12, 13) for j in range(17)]
    anns = [
        {"id": 101, "image_id": 1, "iscrowd": 0, "num_keypoints": 17, "bbox": [20, 10, 40, 90],
         "keypoints": _keypoints(rng, 17, [20, 10, 40, 90], all_kp), "category_id": 1},
        {"id": 102, "image_id": 1, "iscrowd": 0, "num_keypoints": 6, "bbox": [90, 20, 40, 80],
         "keypoints": _keypoints(rng, 17, [90, 20, 40, 80], partial), "category_id": 1},
        {"id": 103, "image_id": 1, "iscrowd": 1, "num_keypoints": 0, "bbox": [0, 60, 30, 50],
         "keypoints": [0] * 51, "segmentation": {"counts": [0], "size": [H, W]},
         "category_id": 1},
        {"id": 104, "image_id": 1, "iscrowd": 0, "num_keypoints": 0, "bbox": [130, 5, 20, 30],
         "keypoints": [0] * 51, "category_id": 1},
        {"id": 201, "image_id": 2, "iscrowd": 0, "num_keypoints": 17, "bbox": [50, 15, 50, 95],
         "keypoints": _keypoints(rng, 17, [50, 15, 50, 95], all_kp), "category_id": 1},
        {"id": 301, "image_id": 3, "iscrowd": 0, "num_keypoints": 17, "bbox": [0, 0, 10, 10],
         "keypoints": _keypoints(rng, 17, [0, 0, 10, 10], all_kp), "category_id": 1},
    ]  # fmt: skip
    train = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "000000000002.jpg", "width": W, "height": H},
            {"id": 3, "file_name": "000000000003.jpg", "width": W, "height": H},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_NAMES)}],
    }
    _dump(os.path.join(manual, "annotations", "person_keypoints_train2017.json"), train)
    # NeuralAnnot: a crop camera (focal 5000 x 1.25 box / 256, principal point at the box centre,
    # NeuralAnnot_RELEASE issue #14), the person ~1.7 m tall filling the box.
    box_h = 90.0
    f_na = 5000.0 * 1.25 * box_h / 256.0
    k_na = np.array([[f_na, 0, 40.0], [0, f_na, 55.0], [0, 0, 1.0]])
    neuralannot = {
        "101": _fit(rng, k_na, [0.0, 0.0, f_na * 1.7 / box_h]),
        "102": _fit(rng, frame_k(), [0.6, 0.1, 5.0]),
        "103": _fit(rng, frame_k(), [0.0, 0.0, 5.0]),
        "201": None,
    }
    _dump(os.path.join(manual, "annotations", "MSCOCO_train_SMPL_NeuralAnnot.json"), neuralannot)
    eft = {"ver": "01", "data": [
        _eft_entry(rng, "COCO_train2014_000000000001.jpg", [40.0, 55.0], 0.54, 101),
        _eft_entry(rng, "COCO_train2014_000000000002.jpg", [75.0, 62.0], 0.57, 201),
    ]}  # fmt: skip
    _dump(os.path.join(manual, "eft_fit", "COCO2014-All-ver01.json"), eft)
    if with_val:
        write_image(os.path.join(manual, "val2017", "000000000010.jpg"), W, H, seed=3)
        val = {
            "images": [{"id": 10, "file_name": "000000000010.jpg", "width": W, "height": H}],
            "annotations": [{"id": 1001, "image_id": 10, "iscrowd": 0, "num_keypoints": 17,
                             "bbox": [30, 20, 40, 80], "category_id": 1,
                             "keypoints": _keypoints(rng, 17, [30, 20, 40, 80], all_kp)}],
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_NAMES)}],
        }  # fmt: skip
        _dump(os.path.join(manual, "annotations", "person_keypoints_val2017.json"), val)
    return {"train": train, "neuralannot": neuralannot, "eft": eft, "k_na": k_na}


def _eft_entry(rng, image: str, centre, scale: float, ann_id: int | None) -> dict:
    pose = np.concatenate([_upright(rng.uniform(-1, 1))[None], rng.normal(0, 0.15, (23, 3))])
    entry = {
        "parm_pose": Rotation.from_rotvec(pose).as_matrix().tolist(),
        "parm_shape": rng.normal(0, 0.5, 10).tolist(),
        "parm_cam": [0.9, 0.02, 0.1],
        "bbox_scale": scale,
        "bbox_center": list(centre),
        "imageName": image,
        "smpltype": "smpl",
    }
    if ann_id is not None:
        entry["annotId"] = ann_id
    return entry


def _frame_fits(rng, ann_ids, boxes) -> dict:
    """NeuralAnnot entries in the frame's own camera (``frame_k``), a ~1.7 m person at the
    depth where it fills its box, centred on it."""
    k = frame_k()
    out = {}
    for ann_id, (x0, _y0, w, h) in zip(ann_ids, boxes, strict=True):
        z = k[1, 1] * 1.7 / h
        x = (x0 + w / 2 - k[0, 2]) * z / k[0, 0]
        out[str(ann_id)] = _fit(rng, k, [x, 0.0, z])
    return out


def write_crowdpose(manual: str, neuralannot: bool = False) -> dict:
    """CrowdPose: json files under json/ (ROMP's layout), images/; image 1 with two persons and
    a crowd region. ``neuralannot``: also CrowdPose_train_SMPL_NeuralAnnot.json (fits of both
    persons in the frame camera) and the neutral body model under body_models/."""
    rng = np.random.default_rng(1)
    write_image(os.path.join(manual, "images", "100000.jpg"), W, H, seed=5)
    data = {
        "images": [{"id": 100000, "file_name": "100000.jpg", "width": W, "height": H,
                    "crowdIndex": 0.4}],
        "annotations": [
            {"id": 1, "image_id": 100000, "iscrowd": 0, "num_keypoints": 14,
             "bbox": [10, 10, 50, 100], "category_id": 1,
             "keypoints": _keypoints(rng, 14, [10, 10, 50, 100], [True] * 14)},
            {"id": 2, "image_id": 100000, "iscrowd": 0, "num_keypoints": 12,
             "bbox": [80, 10, 50, 100], "category_id": 1,
             "keypoints": _keypoints(rng, 14, [80, 10, 50, 100], [j < 12 for j in range(14)])},
            {"id": 3, "image_id": 100000, "iscrowd": 1, "num_keypoints": 0,
             "bbox": [140, 0, 20, 40], "category_id": 1, "keypoints": [0] * 42},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(CROWDPOSE_NAMES)}],
    }  # fmt: skip
    _dump(os.path.join(manual, "json", "crowdpose_train.json"), data)
    if neuralannot:
        write_body_models(os.path.join(manual, "body_models"), genders=("neutral",))
        fits = _frame_fits(rng, (1, 2), ([10, 10, 50, 100], [80, 10, 50, 100]))
        _dump(os.path.join(manual, "json", "CrowdPose_train_SMPL_NeuralAnnot.json"), fits)
    return data


def write_mpii(manual: str, neuralannot: bool = False) -> dict:
    """MPII (NeuralAnnot COCO-style json, no keypoint names): one image with two persons and
    EFT fits matched by image name + centre (one near each person, one far from both);
    ``neuralannot``: also annotations/MPII_train_SMPL_NeuralAnnot.json (both persons)."""
    rng = np.random.default_rng(2)
    write_body_models(os.path.join(manual, "body_models"), genders=("neutral",))
    write_image(os.path.join(manual, "images", "015601864.jpg"), W, H, seed=7)
    data = {
        "images": [{"id": 0, "file_name": "015601864.jpg", "width": W, "height": H}],
        "annotations": [
            {"id": 0, "image_id": 0, "bbox": [10, 10, 50, 100], "num_keypoints": 16,
             "keypoints": _keypoints(rng, 16, [10, 10, 50, 100], [True] * 16)},
            {"id": 1, "image_id": 0, "bbox": [90, 10, 50, 100], "num_keypoints": 16,
             "keypoints": _keypoints(rng, 16, [90, 10, 50, 100], [True] * 16)},
        ],
    }  # fmt: skip
    _dump(os.path.join(manual, "annotations", "train.json"), data)
    eft = {"ver": "01", "data": [
        _eft_entry(rng, "015601864.jpg", [118.0, 58.0], 0.6, None),  # person 1 (centre 115, 60)
        _eft_entry(rng, "015601864.jpg", [33.0, 62.0], 0.6, None),  # person 0 (centre 35, 60)
        _eft_entry(rng, "015601864.jpg", [75.0, 2.0], 0.6, None),  # between and above: far
    ]}  # fmt: skip
    _dump(os.path.join(manual, "eft_fit", "MPII_ver01.json"), eft)
    if neuralannot:
        fits = _frame_fits(rng, (0, 1), ([10, 10, 50, 100], [90, 10, 50, 100]))
        _dump(os.path.join(manual, "annotations", "MPII_train_SMPL_NeuralAnnot.json"), fits)
    return {"train": data, "eft": eft}


def write_muco(manual: str) -> dict:
    """MuCo-3DHP (3DMPPE json): two augmented images (two and one persons) and an unaugmented
    one; ``keypoints_img`` is the projection of ``keypoints_cam`` (mm) with the image's f, c."""
    rng = np.random.default_rng(3)
    images, anns = [], []
    specs = [("augmented_set/0.jpg", 2), ("augmented_set/1.jpg", 1), ("unaugmented_set/0.jpg", 1)]
    for i, (name, n) in enumerate(specs):
        write_image(os.path.join(manual, name), W, H, seed=10 + i)
        f, c = [150.0 + 10 * i, 152.0 + 10 * i], [W / 2 + 1.5, H / 2 - 2.0]
        images.append({"id": i, "file_name": name, "width": W, "height": H, "f": f, "c": c})
        for p in range(n):
            root = np.array([rng.uniform(-600, 600), rng.uniform(-200, 200), 4000.0 + 500 * p])
            cam = root + rng.normal(0, 300, (21, 3)) * [1, 2.5, 0.3]
            img = np.stack([f[0] * cam[:, 0] / cam[:, 2] + c[0],
                            f[1] * cam[:, 1] / cam[:, 2] + c[1]], -1)  # fmt: skip
            lo, hi = img.min(0), img.max(0)
            anns.append({"id": 100 * i + p, "image_id": i, "keypoints_cam": cam.tolist(),
                         "keypoints_img": img.tolist(),
                         "bbox": [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]})  # fmt: skip
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    _dump(os.path.join(manual, "MuCo-3DHP.json"), data)
    return data


def write_posetrack(manual: str) -> dict:
    """PoseTrack18: train video 000001_bonn_train with frames 10, 11 (labelled; two tracks, an
    ignore region on frame 10, a box-only person on 11) and 12 (unlabelled); val video
    000002_mpii_test with frame 0."""
    rng = np.random.default_rng(4)
    out = {}
    for split, vid, frames in (("train", "000001_bonn_train", (10, 11, 12)),
                               ("val", "000002_mpii_test", (0,))):  # fmt: skip
        images, anns = [], []
        for t in frames:
            file_name = f"images/{split}/{vid}/{t:06d}.jpg"
            write_image(os.path.join(manual, file_name), W, H, seed=t)
            image_id = 10000000000 + int(vid[:6]) * 10000 + t
            labelled = t != 12
            image = {"id": image_id, "file_name": file_name, "vid_id": vid[:6],
                     "frame_id": image_id, "nframes": len(frames), "is_labeled": labelled,
                     "has_no_densepose": True}  # fmt: skip
            if t == 10:
                image["ignore_regions_x"] = [[100, 150, 140]]
                image["ignore_regions_y"] = [[5, 10, 40]]
            images.append(image)
            if not labelled:
                continue
            for track in (0, 1):
                vis = [j not in (3, 4) for j in range(17)]  # ears never labelled
                anns.append({"id": image_id * 100 + track, "image_id": image_id,
                             "track_id": track, "category_id": 1,
                             "bbox": [10 + 60 * track, 10, 40, 90], "bbox_head": [0, 0, 5, 5],
                             "keypoints": _keypoints(rng, 17, [10 + 60 * track, 10, 40, 90],
                                                     vis), "scores": []})  # fmt: skip
            if t == 11:
                anns.append({"id": image_id * 100 + 9, "image_id": image_id, "track_id": 7,
                             "category_id": 1, "bbox": [130, 60, 20, 40]})  # fmt: skip
        data = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(POSETRACK_NAMES), "skeleton": []}],
        }  # fmt: skip
        _dump(os.path.join(manual, "annotations", split, f"{vid}.json"), data)
        out[split] = data
    return out
