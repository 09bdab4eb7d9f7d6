"""COCO-2017 person keypoints (Lin et al., ECCV 2014), with NeuralAnnot or EFT pseudo-SMPL.

Official layout (cocodataset.org #download): ``annotations/person_keypoints_{train,val}2017.json``
and ``{train,val}2017/<file_name>``. Every person of an image is annotated except inside crowd
regions (``iscrowd``), which become ``ignore_boxes`` (ROMP treats COCO as "detect all").
Persons with ``num_keypoints`` 0 (box and mask only) are ignore regions too, as COCO's keypoint
evaluation ignores them and ROMP masks them out.
"""

from __future__ import annotations

from siam_jax.body import keypoints as kp
from siam_jax.data.builders.coco_family.family import (
    CocoFamilyBuilder,
    FamilySpec,
    SplitLayout,
    family_configs,
)

_INSTRUCTIONS = """\
COCO-2017 (https://cocodataset.org/#download: 2017 Train/Val images, 2017 Train/Val annotations).
Place under `manual_dir`:
  annotations/person_keypoints_train2017.json
  annotations/person_keypoints_val2017.json          (optional: the validation split)
  train2017/<file_name>.jpg    val2017/<file_name>.jpg
Config `neuralannot` also needs NeuralAnnot's SMPL fits (github.com/mks0601/NeuralAnnot_RELEASE,
MSCOCO "SMPL parameters") beside the annotations:
  annotations/MSCOCO_train_SMPL_NeuralAnnot.json
Config `eft` needs EFT's COCO fits (github.com/facebookresearch/eft, "EFT Fitting data"):
  eft_fit/COCO2014-All-ver01.json      (matched to COCO-2017 annotations by annotId)
Both side-car configs need the neutral SMPL model in the body-model folder (builder argument
`body_model_dir`, default `manual_dir/body_models`): SMPL_NEUTRAL.npz or SMPL_NEUTRAL.pkl.
Licence: annotations CC BY 4.0 (COCO Consortium); images under the Flickr Terms of Use.
"""

SPEC = FamilySpec(
    dataset="COCO-2017",
    joint_set="coco_17",
    json_keypoint_names=kp.dataset_joint_names("coco_17"),
    ann_keys=("keypoints",),
    image_keys=(),
    all_persons_annotated=True,
    video=False,
    splits={
        "train": SplitLayout(
            annotations=("annotations/person_keypoints_train2017.json",),
            images=("train2017", "images/train2017"),
            sidecars={
                "neuralannot": (
                    "annotations/MSCOCO_train_SMPL_NeuralAnnot.json",
                    "MSCOCO_train_SMPL_NeuralAnnot.json",
                ),
                "eft": ("eft_fit/COCO2014-All-ver01.json", "COCO2014-All-ver01.json"),
            },
        ),
        "validation": SplitLayout(
            annotations=("annotations/person_keypoints_val2017.json",),
            images=("val2017", "images/val2017"),
            required=False,
        ),
    },
    homepage="https://cocodataset.org/",
)


class CocoKeypoints(CocoFamilyBuilder):
    """COCO-2017 keypoint persons (TFDS's own 'coco' name is taken: 'coco_keypoints')."""

    name = "coco_keypoints"
    SPEC = SPEC
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = family_configs(("neuralannot", "eft"))  # noqa: RUF012
