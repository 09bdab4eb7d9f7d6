"""PoseTrack18 (Andriluka et al., CVPR 2018): multi-person 2D pose and tracks in video.

Official layout: ``annotations/{train,val}/<video>.json`` (COCO-like, one file per video) and
``images/{train,val}/<video>/<frame>.jpg`` (the json ``file_name``, relative to the release root).
Images carry ``vid_id``, ``frame_id``, ``is_labeled`` and ``ignore_regions_x``/``_y`` (polygons of
people too hard to annotate); annotations ``keypoints`` (17 x 3, the PoseTrack18 order of poseval),
``track_id``, ``bbox`` (poseval convert.py). Training videos label about 30 frames in the middle,
validation videos every 4th frame (PoseTrack paper).

One ``sequence_id`` per video (its folder name), ``frame_index`` = the frame number of the file
name, ``track_id`` kept per person. Every person outside the ignore regions is annotated, so
``all_persons_annotated`` is True with the regions as ``ignore_boxes`` (ROMP posetrack.py sets it
False: it has no ignore regions). Unlabelled frames are left out (config ``labeled``) or kept
with no persons and ``all_persons_annotated`` False (config ``all_frames``).
"""

from __future__ import annotations

import os

import numpy as np

from siam_jax.body import keypoints as kp
from siam_jax.data.builders.coco_family import annotations as ann_lib
from siam_jax.data.builders.coco_family.family import (
    CocoFamilyBuilder,
    FamilyConfig,
    FamilySpec,
    SplitLayout,
)

_INSTRUCTIONS = """\
PoseTrack18 (https://posetrack.net/; the site has been reported offline since 2022, ROMP issue
#353). Place the release root (`posetrack_data`) as `manual_dir`:
  annotations/train/<video>.json   annotations/val/<video>.json
  images/train/<video>/<frame>.jpg images/val/<video>/<frame>.jpg
Licence: could not be verified with our search tools; see the PoseTrack terms of use.
"""

SPEC = FamilySpec(
    dataset="PoseTrack18",
    joint_set="posetrack_17",
    json_keypoint_names=kp.dataset_joint_names("posetrack_17"),
    ann_keys=(),  # box-only annotations may lack 'keypoints'
    image_keys=(),
    all_persons_annotated=True,
    video=True,
    splits={
        "train": SplitLayout(annotations=("annotations/train/",), images=("",)),
        "validation": SplitLayout(annotations=("annotations/val/",), images=("",), required=False),
    },  # fmt: skip
    homepage="https://posetrack.net/",
)


class Posetrack(CocoFamilyBuilder):
    name = "posetrack"
    SPEC = SPEC
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [  # noqa: RUF012
        FamilyConfig(name="labeled", description="labelled frames only",
                     options={"labeled_only": True}),
        FamilyConfig(name="all_frames", description="every frame of each video",
                     options={"labeled_only": False}),
    ]  # fmt: skip

    def skip_image(self, image: dict) -> str | None:
        if self.builder_config.options["labeled_only"] and not image.get("is_labeled", True):
            return "frames_unlabeled"
        return None

    def sequence_of(self, image: dict) -> tuple[str, int]:
        file_name = str(image["file_name"])
        stem = os.path.splitext(os.path.basename(file_name))[0]
        if not stem.isdigit():
            raise ValueError(f"PoseTrack image {image['id']}: file name {file_name!r} has no "
                             "frame number")  # fmt: skip
        return os.path.basename(os.path.dirname(file_name)), int(stem)

    def frame_ignore_boxes(self, image: dict, where: str) -> np.ndarray:
        return ann_lib.polygon_boxes(
            image.get("ignore_regions_x") or [], image.get("ignore_regions_y") or [], where
        )

    def _exhaustive(self, image: dict) -> bool:
        return bool(image.get("is_labeled", True))

    def parse_annotation(self, ann: dict, size, k: np.ndarray, where: str, counts):
        if ann.get("keypoints") is None:  # box-only person: don't-care region
            counts["persons_without_keypoints"] += 1
            return "ignore", ann_lib.xywh_box(ann, *size, where)
        kind, value = super().parse_annotation(ann, size, k, where, counts)
        if kind == "person":
            value["track_id"] = np.int32(ann.get("track_id", -1))
        return kind, value
