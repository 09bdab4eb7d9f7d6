"""Dataset builders; importing this module registers them with TFDS (`--imports`)."""

from siam_jax.data.builders import (  # noqa: F401
    agora,
    bedlam,
    cmu_panoptic,
    coco_family,
    h36m,
    mpi_inf_3dhp,
    pw3d,
)
from siam_jax.data.builders.siam_synthetic import SiamSynthetic  # noqa: F401
