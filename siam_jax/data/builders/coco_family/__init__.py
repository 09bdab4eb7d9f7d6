"""The COCO-format multi-person builders (docs/training_data.md); importing registers them."""

from siam_jax.data.builders.coco_family.coco import CocoKeypoints
from siam_jax.data.builders.coco_family.crowdpose import Crowdpose
from siam_jax.data.builders.coco_family.mpii import Mpii
from siam_jax.data.builders.coco_family.muco import Muco
from siam_jax.data.builders.coco_family.posetrack import Posetrack

__all__ = ["CocoKeypoints", "Crowdpose", "Mpii", "Muco", "Posetrack"]
