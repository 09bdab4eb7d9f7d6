"""MuCo-3DHP (Mehta et al., 3DV 2018): multi-person composites of MPI-INF-3DHP, 3D joints and
camera per image, in the COCO-format json of 3DMPPE (``MuCo-3DHP.json``).

Images carry the camera ``f`` [fx, fy] and ``c`` [cx, cy]; annotations ``keypoints_img`` (21x2
pixels) and ``keypoints_cam`` (21x3 mm, camera frame) in the MuCo-21 order (I2L-MeshNet
data/MuCo/MuCo.py). Every composited person is labelled. There is no SMPL: persons carry 3D and
2D keypoints (``has_keypoints_3d``/``_2d``), their SMPL limb joints in ``joints_2d``; ``joints_3d``
(all 24 SMPL joints) stays off. ROMP (romp/lib/dataset/MuCo.py) skips the "unaugmented" images;
config ``augmented`` (default) does the same, ``all`` keeps them.
"""

from __future__ import annotations

import numpy as np

from siam_jax.body import keypoints as kp
from siam_jax.data import conversions as cv
from siam_jax.data import keypoint_fill, schema
from siam_jax.data.builders.coco_family import annotations as ann_lib
from siam_jax.data.builders.coco_family.family import (
    CocoFamilyBuilder,
    FamilyConfig,
    FamilySpec,
    SplitLayout,
)

REPROJECTION_TOLERANCE_PX = 1.0  # keypoints_img vs keypoints_cam projected with f, c

_INSTRUCTIONS = """\
MuCo-3DHP as parsed and composited by 3DMPPE (github.com/mks0601/3DMPPE_POSENET_RELEASE, "MuCo
parsed and composited data"). Place its `MuCo/data` folder as `manual_dir`:
  MuCo-3DHP.json
  augmented_set/<file>.jpg     unaugmented_set/<file>.jpg   (the json's file_name under it)
Licence: derived from MPI-INF-3DHP; its terms could not be verified with our search tools (see
the MPI-INF-3DHP / MuCo-3DHP pages of the MPI for Informatics).
"""

SPEC = FamilySpec(
    dataset="MuCo-3DHP",
    joint_set="muco_21",
    json_keypoint_names=None,
    ann_keys=("keypoints_img", "keypoints_cam"),
    image_keys=("f", "c"),
    all_persons_annotated=True,
    video=False,
    splits={
        "train": SplitLayout(
            annotations=("MuCo-3DHP.json", "data/MuCo-3DHP.json"), images=("", "data")
        )
    },  # fmt: skip
    homepage="https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/",
)


class Muco(CocoFamilyBuilder):
    name = "muco"
    SPEC = SPEC
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [  # noqa: RUF012
        FamilyConfig(name="augmented", description="augmented composites (ROMP)",
                     options={"augmented_only": True}),
        FamilyConfig(name="all", description="every image of the json",
                     options={"augmented_only": False}),
    ]  # fmt: skip

    def skip_image(self, image: dict) -> str | None:
        if self.builder_config.options["augmented_only"] and "unaugmented" in image["file_name"]:
            return "images_unaugmented_skipped"
        return None

    def intrinsics(self, image: dict, width: int, height: int) -> np.ndarray:
        where = f"MuCo image {image['id']}"
        f = ann_lib.array_field(image, "f", (2,), where)
        c = ann_lib.array_field(image, "c", (2,), where)
        return np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])

    def parse_annotation(self, ann: dict, size, k: np.ndarray, where: str, counts):
        width, height = size
        n = len(kp.dataset_joint_names("muco_21"))
        kp2d = ann_lib.array_field(ann, "keypoints_img", (n, 2), where)
        kp3d = ann_lib.array_field(ann, "keypoints_cam", (n, 3), where) / 1000.0  # mm -> m
        if np.any(kp3d[:, 2] <= 0):
            raise ValueError(f"{where}: 'keypoints_cam' has points behind the camera")
        error = np.abs(cv.project_points(kp3d, k) - kp2d).max()
        counts["keypoints_reprojection_over_1px"] += int(error > REPROJECTION_TOLERANCE_PX)
        person = schema.empty_person()
        inside = cv.in_image(kp2d, kp3d[:, 2], width, height)
        keypoint_fill.fill_keypoints(person, "muco_21", kp2d, inside, kp3d, np.ones(n))
        box = ann_lib.xywh_box(ann, width, height, where)
        person["bbox"] = box if box is not None else cv.bbox_from_points(kp2d, width, height)
        person["valid"] = np.bool_(True)
        return "person", person
