"""The camera of the demo's input frames: ``--fov DEG`` or ``--intrinsics fx,fy,cx,cy``.

Conventions (siam_jax/models/camera.py): OpenCV camera frame, pixel centres at integers,
K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels of the *original* frame.

- ``Camera(fov_degrees=60)`` (the default, config.model.fov_degrees as documented in
  docs/choices.md): the field of view spans the frame's longer side, principal point at the
  frame centre ((W - 1) / 2, (H - 1) / 2). This is the camera the network was trained with once
  the frame is letterboxed into the square input: the square's side is the longer side.
- ``Camera(intrinsics=(fx, fy, cx, cy))``: a calibrated camera, used as given.

The predictor letterboxes the frame into the network's square input and maps this K with the
same pixel affine (siam_jax.data.augment.frame_transform), so the model's camera-to-translation,
the 2D projections and the overlay all use one camera.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from jaxtyping import Float


@dataclasses.dataclass(frozen=True)
class Camera:
    """The intrinsics of every frame of one input (``fov_degrees`` or explicit ``intrinsics``)."""

    fov_degrees: float | None = 60.0
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy (pixels)

    def __post_init__(self):
        if self.intrinsics is not None:
            fx, fy, _, _ = self.intrinsics
            if not all(math.isfinite(v) for v in self.intrinsics) or fx <= 0 or fy <= 0:
                raise ValueError(f"intrinsics fx,fy,cx,cy must be finite, fx, fy > 0: "
                                 f"{self.intrinsics}")  # fmt: skip
        elif self.fov_degrees is None or not 0.0 < self.fov_degrees < 180.0:
            raise ValueError(f"fov must be in (0, 180) degrees, got {self.fov_degrees}")

    def matrix(self, image_hw: tuple[int, int]) -> Float[np.ndarray, "3 3"]:
        """K of a frame of ``image_hw`` (height, width) pixels."""
        h, w = int(image_hw[0]), int(image_hw[1])
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
        else:
            fx = fy = (max(h, w) / 2.0) / math.tan(math.radians(self.fov_degrees) / 2.0)
            cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)

    def describe(self) -> str:
        if self.intrinsics is not None:
            return "intrinsics fx,fy,cx,cy=" + ",".join(f"{v:g}" for v in self.intrinsics)
        return f"fov {self.fov_degrees:g} deg across the longer side"


def camera_from_flags(fov: float | None, intrinsics: str | None, default_fov: float) -> Camera:
    """The camera of ``--fov`` / ``--intrinsics`` (at most one), else ``default_fov``."""
    if fov is not None and intrinsics:
        raise ValueError("pass --fov or --intrinsics, not both")
    if intrinsics:
        parts = [p.strip() for p in intrinsics.split(",")]
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 4:
            raise ValueError(f"--intrinsics must be four numbers fx,fy,cx,cy, got {intrinsics!r}")
        return Camera(fov_degrees=None, intrinsics=values)
    return Camera(fov_degrees=float(default_fov if fov is None else fov))
