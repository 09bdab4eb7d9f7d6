"""Dataset builders; importing this module registers them with TFDS (`--imports`)."""

from siam_jax.data.builders import agora, cmu_panoptic, coco_family, pw3d  # noqa: F401
from siam_jax.data.builders.siam_synthetic import SiamSynthetic  # noqa: F401
