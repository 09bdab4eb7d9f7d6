"""CrowdPose (Li et al., CVPR 2019): crowded scenes, 14 joints, COCO-format json.

Layout of the release (github.com/Jeff-sjtu/CrowdPose): ``crowdpose_{train,val,test}.json`` and
``images/<file_name>``; ROMP keeps the json files under ``json/``, NeuralAnnot beside the images.
ROMP (romp/lib/dataset/crowdpose.py) treats every person as annotated ("detect all" True);
SAT-HMR does not (detect_all_people False). We follow ROMP and the json: crowds and persons without
keypoints are ignore boxes, everyone else is labelled.
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
CrowdPose (https://github.com/Jeff-sjtu/CrowdPose: images and annotations). Place under
`manual_dir` (the json files directly, or under json/ or annotations/):
  crowdpose_train.json  crowdpose_val.json  crowdpose_test.json  (val/test optional)
  images/<file_name>.jpg
Config `neuralannot` also needs NeuralAnnot's fits (github.com/mks0601/NeuralAnnot_RELEASE,
CrowdPose "SMPL parameters") beside them: CrowdPose_train_SMPL_NeuralAnnot.json, and the neutral
SMPL model in the body-model folder (default `manual_dir/body_models`): SMPL_NEUTRAL.npz|.pkl.
Licence: not stated in the files we could check; see the CrowdPose repository.
"""


def _json(name: str) -> tuple[str, ...]:
    return (name, f"json/{name}", f"annotations/{name}")


SPEC = FamilySpec(
    dataset="CrowdPose",
    joint_set="crowdpose_14",
    json_keypoint_names=kp.dataset_joint_names("crowdpose_14"),
    ann_keys=("keypoints",),
    image_keys=(),
    all_persons_annotated=True,
    video=False,
    splits={
        "train": SplitLayout(
            annotations=_json("crowdpose_train.json"),
            images=("images",),
            sidecars={"neuralannot": _json("CrowdPose_train_SMPL_NeuralAnnot.json")},
        ),
        "validation": SplitLayout(_json("crowdpose_val.json"), ("images",), required=False),
        "test": SplitLayout(_json("crowdpose_test.json"), ("images",), required=False),
    },
    homepage="https://github.com/Jeff-sjtu/CrowdPose",
)


class Crowdpose(CocoFamilyBuilder):
    name = "crowdpose"
    SPEC = SPEC
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = family_configs(("neuralannot",))  # noqa: RUF012
