"""COCO-format annotation files (cocodataset.org #format-data): reading and checking.

The family's datasets all ship ``{'images': [...], 'annotations': [...], 'categories': [...]}``:
images carry ``id`` and ``file_name`` (MuCo adds the camera ``f``/``c``, PoseTrack ``vid_id``,
``is_labeled`` and ignore regions); annotations carry ``id``, ``image_id`` and the keypoints
(``keypoints`` as x, y, v triples, or MuCo's ``keypoints_img`` / ``keypoints_cam``). Errors name
the file, the entry and the key.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from siam_jax.data.builders.coco_family.sidecars import load_json


@dataclasses.dataclass
class CocoFile:
    """One checked annotation file: images by id, and each image's annotations (file order)."""

    path: str
    images: dict[int, dict]
    by_image: dict[int, list[dict]]
    ann_ids: set[int]
    categories: list


def read_coco(path: str, ann_keys: tuple[str, ...], image_keys: tuple[str, ...] = ()) -> CocoFile:
    """Reads ``path`` and checks the top-level keys, every image (``id``, ``file_name`` and
    ``image_keys``) and annotation (``id``, ``image_id`` and ``ann_keys``)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a COCO-format json object")
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
        if not isinstance(data[key], list):
            raise ValueError(f"{path}: {key!r} is not a list")
    images = {}
    for i, image in enumerate(data["images"]):
        for key in ("id", "file_name", *image_keys):
            if not isinstance(image, dict) or key not in image:
                raise ValueError(f"{path}: images[{i}] lacks key {key!r}")
        if image["id"] in images:
            raise ValueError(f"{path}: images[{i}] repeats image id {image['id']}")
        images[image["id"]] = image
    by_image: dict[int, list[dict]] = collections.defaultdict(list)
    ann_ids: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        for key in ("id", "image_id", *ann_keys):
            if not isinstance(ann, dict) or key not in ann:
                raise ValueError(f"{path}: annotations[{i}] lacks key {key!r}")
        if ann["id"] in ann_ids:
            raise ValueError(f"{path}: annotations[{i}] repeats annotation id {ann['id']}")
        if ann["image_id"] not in images:
            raise ValueError(
                f"{path}: annotations[{i}] (id {ann['id']}): 'image_id' {ann['image_id']} "
                "matches no image"
            )
        ann_ids.add(int(ann["id"]))
        by_image[ann["image_id"]].append(ann)
    return CocoFile(path, images, dict(by_image), ann_ids, list(data.get("categories") or []))


def check_keypoint_names(coco: CocoFile, expected: tuple[str, ...]) -> None:
    """When the file names its keypoints (``categories[*]['keypoints']``, the person category),
    they must be ``expected``: a different order would put every joint in the wrong place."""
    for i, cat in enumerate(coco.categories):
        names = cat.get("keypoints") if isinstance(cat, dict) else None
        if names is None:
            continue
        if tuple(names) != tuple(expected):
            raise ValueError(
                f"{coco.path}: categories[{i}]['keypoints'] is {list(names)}, expected "
                f"{list(expected)}"
            )


def keypoint_triples(ann: dict, num_joints: int, where: str) -> np.ndarray:
    """``[J 3]`` (x, y, v) of a COCO ``keypoints`` list."""
    try:
        kps = np.asarray(ann["keypoints"], np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: 'keypoints' is not numeric: {err}") from err
    if kps.size != 3 * num_joints or not np.all(np.isfinite(kps)):
        raise ValueError(f"{where}: 'keypoints' has {kps.size} values, expected {3 * num_joints}")
    return kps.reshape(num_joints, 3)


def array_field(ann: dict, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A numeric annotation field of a fixed shape (MuCo ``keypoints_img`` / ``keypoints_cam``)."""
    try:
        value = np.asarray(ann[key], np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {key!r} is not numeric: {err}") from err
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ValueError(f"{where}: {key!r} has shape {value.shape}, expected {shape}")
    return value


def xywh_box(ann: dict, width: int, height: int, where: str) -> np.ndarray | None:
    """``x0 y0 x1 y1`` of a COCO ``bbox`` [x, y, w, h], clipped to the image; None if absent."""
    if ann.get("bbox") is None or len(ann["bbox"]) == 0:
        return None
    b = np.asarray(ann["bbox"], np.float64).reshape(-1)
    if b.size != 4 or not np.all(np.isfinite(b)) or b[2] < 0 or b[3] < 0:
        raise ValueError(f"{where}: 'bbox' {ann['bbox']} is not [x, y, w, h]")
    box = np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
    box[[0, 2]] = np.clip(box[[0, 2]], 0, width - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, height - 1)
    return box.astype(np.float32)


def polygon_boxes(xs: list, ys: list, where: str) -> np.ndarray:
    """Bounding boxes ``[n 4]`` of polygons given as parallel x / y lists (PoseTrack
    ``ignore_regions_x`` / ``ignore_regions_y``)."""
    if len(xs) != len(ys):
        raise ValueError(f"{where}: {len(xs)} x-polygons but {len(ys)} y-polygons")
    boxes = []
    for j, (px, py) in enumerate(zip(xs, ys, strict=True)):
        px, py = np.asarray(px, np.float64).reshape(-1), np.asarray(py, np.float64).reshape(-1)
        if px.size != py.size:
            raise ValueError(f"{where}: polygon {j} has {px.size} x and {py.size} y values")
        if px.size:
            boxes.append([px.min(), py.min(), px.max(), py.max()])
    return np.asarray(boxes, np.float32).reshape(-1, 4)
