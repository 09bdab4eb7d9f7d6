"""MPII Human Pose (Andriluka et al., CVPR 2014) in the COCO-style json of its NeuralAnnot /
3DMPPE release (``annotations/train.json``; images from the official ``images/`` folder).

Joint order: the MPII release order (Hand4Whole/I2L MPII.py joints_name). Not every person of an
MPII image is annotated (only "sufficiently separated" people are; SAT-HMR: detect_all_people
False), so ``all_persons_annotated`` is False here, although ROMP sets it True.
"""

from __future__ import annotations

from siam_jax.data.builders.coco_family.family import (
    CocoFamilyBuilder,
    FamilySpec,
    SplitLayout,
    family_configs,
)

_INSTRUCTIONS = """\
MPII Human Pose images (http://human-pose.mpi-inf.mpg.de/, "Images") and the COCO-style
annotations of NeuralAnnot / 3DMPPE (github.com/mks0601/NeuralAnnot_RELEASE, MPII "data").
Place under `manual_dir`:
  annotations/train.json
  images/<file_name>.jpg
Config `neuralannot`: annotations/MPII_train_SMPL_NeuralAnnot.json (MPII "SMPL parameters").
Config `eft`: eft_fit/MPII_ver01.json (github.com/facebookresearch/eft; matched by image name and
box centre). Both need SMPL_NEUTRAL.npz|.pkl in the body-model folder (default
`manual_dir/body_models`).
Licence: annotations and code "freely available for research purposes", commercial use not
allowed (MPII site); EFT fits CC BY-NC 4.0.
"""

SPEC = FamilySpec(
    dataset="MPII",
    joint_set="mpii_16",
    json_keypoint_names=None,  # the NeuralAnnot json does not name its keypoints
    ann_keys=("keypoints",),
    image_keys=(),
    all_persons_annotated=False,
    video=False,
    splits={
        "train": SplitLayout(
            annotations=("annotations/train.json",),
            images=("images", ""),
            sidecars={
                "neuralannot": ("annotations/MPII_train_SMPL_NeuralAnnot.json",),
                "eft": ("eft_fit/MPII_ver01.json", "MPII_ver01.json"),
            },
        ),
    },
    homepage="http://human-pose.mpi-inf.mpg.de/",
)


class Mpii(CocoFamilyBuilder):
    name = "mpii"
    SPEC = SPEC
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = family_configs(("neuralannot", "eft"))  # noqa: RUF012
