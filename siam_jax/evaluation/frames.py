"""What evaluation knows of one frame besides the network's input: its record (all GT people,
not only the k slots of the batch), the stored image's size, and the map from the network
input's pixels back to the stored image's.

The map inverts the pipeline's resize/pad (``augment.frame_transform`` with identity
augmentation: no rotation, so the camera frame of the 3D outputs is the stored image's).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Float

from siam_jax.data import augment as augment_lib


@dataclasses.dataclass
class Frame:
    """One evaluated frame: its record, the stored image size and the inverse pixel map."""

    record: Mapping[str, Any]
    persons: dict[str, np.ndarray]
    image_name: str
    sequence_id: str
    width: int
    height: int
    to_stored: np.ndarray  # [3 3] input pixels -> stored image pixels


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _image_size(encoded) -> tuple[int, int]:
    """(width, height) from the encoded image's header (no full decode)."""
    from PIL import Image

    data = encoded if isinstance(encoded, bytes) else np.asarray(encoded).tobytes()
    with Image.open(io.BytesIO(data)) as im:
        return int(im.size[0]), int(im.size[1])


def read_frame(source, record: int, input_size: int, where: str) -> Frame:
    """Metadata of record ``record`` of ``source`` (a TFDS data source with undecoded images)."""
    ex = source[int(record)]
    width, height = _image_size(ex["image"])
    persons = augment_lib.persons_from_record(ex["persons"], f"{where} record {record}")
    tr = augment_lib.frame_transform(
        (height, width),
        np.asarray(ex["intrinsics"], np.float32),
        augment_lib.AugmentParams(),
        input_size,
    )
    return Frame(
        record=ex,
        persons=persons,
        image_name=_text(ex["image_name"]),
        sequence_id=_text(ex["sequence_id"]),
        width=width,
        height=height,
        to_stored=np.linalg.inv(tr.pixel),
    )


def to_stored_pixels(points: Float[np.ndarray, "*n 2"], to_stored: np.ndarray) -> np.ndarray:
    """Input-image pixels -> stored-image pixels (the inverse of the pipeline's fit)."""
    return augment_lib.apply_affine(points, to_stored).reshape(np.shape(points))
