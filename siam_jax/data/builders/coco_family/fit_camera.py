"""Pseudo-SMPL fits moved from their own virtual camera into the one camera of the frame.

Every NeuralAnnot / EFT fit comes with its own camera: NeuralAnnot fits a person in a 256x256 crop
with focal 5000 and maps that camera back to the image, so its ``cam_param`` has a focal of about
5000 x crop / 256 and a principal point near the person (mks0601, NeuralAnnot_RELEASE issue #14);
EFT stores SPIN's weak-perspective crop camera (``sidecars.eft_camera``). Two people of one image
therefore sit in two different cameras, and their translations cannot be compared or projected
with the frame's intrinsics.

We keep one camera per frame (``frame_intrinsics``: the project's default 60-degree field of view
over the longer image side, principal point at the image centre, docs/choices.md) and move each
fit rigidly, ``X -> R X + b``, so that seen through the frame camera it covers the same pixels as
through its own camera:

1. start from the rotation that turns the ray to the fit's root joint onto the frame camera's ray
   through the same pixel (the person keeps its orientation relative to the line of sight, the
   argument of CLIFF's full-frame camera), at the distance that keeps its apparent size
   (``d' = d f_frame / f_fit``);
2. refine ``(R, b)`` by Gauss-Newton on the pixel residual of smplx's 45 joints (SMPL joints and the
   face/feet/hand vertex joints), the perspective-n-point problem of the fit's own projection.

A rigid move cannot make a focal of ~5000 look like one of ~W (perspective foreshortening
differs), so a residual remains; ``convert_fit`` returns it and the builders record its
distribution in ``info.metadata``. The SMPL parameters follow the rigid move exactly
(``conversions.transform_smpl_root``): ``global_orient' = R global_orient``,
``transl' = R (J0 + transl) + b - J0``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from siam_jax.body import RestRoot, rotations
from siam_jax.data import conversions as cv

FRAME_FOV_DEGREES = 60.0  # docs/choices.md: default camera for images without intrinsics
GAUSS_NEWTON_STEPS = 12


def frame_intrinsics(
    width: int, height: int, fov_degrees: float = FRAME_FOV_DEGREES
) -> Float[np.ndarray, "3 3"]:
    """The default camera of an image without intrinsics: ``fov_degrees`` across the longer side
    (as the network input of docs/choices.md), principal point at the centre ``((W-1)/2, (H-1)/2)``
    (pixel centres at integers)."""
    f = 0.5 * max(width, height) / math.tan(math.radians(fov_degrees) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


@dataclasses.dataclass(frozen=True)
class Fit:
    """One pseudo-SMPL fit in its own camera: SMPL parameters and the camera ``k`` [3 3] in pixels
    of the full image; ``source`` is an entry of ``schema.SMPL_SOURCES``."""

    betas: np.ndarray  # [10]
    global_orient: np.ndarray  # [3] axis-angle
    body_pose: np.ndarray  # [23 3] axis-angle
    transl: np.ndarray  # [3] metres, the fit's camera frame
    k: np.ndarray  # [3 3]
    source: str
    key: str  # where it came from, for messages ('file: key')


@dataclasses.dataclass(frozen=True)
class ConvertedFit:
    global_orient: np.ndarray  # [3] in the frame camera
    transl: np.ndarray  # [3]
    rms_px: float  # pixel RMS of the 45 joints: frame camera vs the fit's own camera
    height_px: float  # vertical extent of those joints in the image (for relative errors)


def _project(points, k):
    p = points @ k.T
    return p[..., :2] / p[..., 2:3]


@functools.partial(jax.jit, static_argnames="steps")
def _refine(points, target, k, rot0, b0, steps: int = GAUSS_NEWTON_STEPS):
    """Gauss-Newton over (w, db): ``R = exp(w) rot0``, ``b = b0 + db``; returns (R, b)."""

    def residual(x):
        r = rotations.axis_angle_to_matrix(x[:3]) @ rot0
        cam = points @ r.T + (b0 + x[3:])
        return (_project(cam, k) - target).reshape(-1)

    def step(x, _):
        res = residual(x)
        jac = jax.jacfwd(residual)(x)
        jtj = jac.T @ jac
        damping = 1e-9 * jnp.trace(jtj) * jnp.eye(6, dtype=x.dtype)
        return x - jnp.linalg.solve(jtj + damping, jac.T @ res), None

    x, _ = jax.lax.scan(step, jnp.zeros(6, points.dtype), None, length=steps)
    return rotations.axis_angle_to_matrix(x[:3]) @ rot0, b0 + x[3:]


def _turn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    aa = axis / s * math.atan2(s, c)
    return np.asarray(rotations.axis_angle_to_matrix(jnp.asarray(aa)), np.float64)


def rigid_to_camera(
    points: Float[np.ndarray, "n 3"],
    k_fit: Float[np.ndarray, "3 3"],
    k_frame: Float[np.ndarray, "3 3"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R, b, target)``: the rigid move of camera-frame ``points`` (seen through ``k_fit``)
    whose projection through ``k_frame`` best matches ``target``, their ``k_fit`` projection."""
    pts = np.asarray(points, np.float64)
    target = _project(pts, np.asarray(k_fit, np.float64))
    root = pts[0]
    ray_frame = np.linalg.solve(k_frame, np.array([*target[0], 1.0]))
    rot0 = _turn(root / np.linalg.norm(root), ray_frame / np.linalg.norm(ray_frame))
    f_fit = math.sqrt(k_fit[0, 0] * k_fit[1, 1])
    f_frame = math.sqrt(k_frame[0, 0] * k_frame[1, 1])
    distance = np.linalg.norm(root) * f_frame / f_fit
    b0 = distance * ray_frame / np.linalg.norm(ray_frame) - rot0 @ root
    # Solve relative to the root so float32 keeps sub-millimetre resolution at any depth.
    r, b = _refine(
        jnp.asarray(pts - root, jnp.float32),
        jnp.asarray(target, jnp.float32),
        jnp.asarray(k_frame, jnp.float32),
        jnp.asarray(rot0, jnp.float32),
        jnp.asarray(b0 + rot0 @ root, jnp.float32),
    )
    r = np.asarray(r, np.float64)
    return r, np.asarray(b, np.float64) - r @ root, target


def fit_points(model, fit: Fit) -> np.ndarray:
    """smplx's 45 joints of ``fit`` in its own camera (metres)."""
    out = model(
        betas=jnp.asarray(fit.betas, jnp.float32)[None],
        body_pose=jnp.asarray(fit.body_pose, jnp.float32)[None],
        global_orient=rotations.axis_angle_to_matrix(jnp.asarray(fit.global_orient, jnp.float32))[
            None, None
        ],
        transl=jnp.asarray(fit.transl, jnp.float32)[None],
    )
    return np.asarray(out.joints45[0], np.float64)


def convert_fit(model, fit: Fit, k_frame: Float[np.ndarray, "3 3"]) -> ConvertedFit:
    """``fit`` moved into the frame camera ``k_frame`` (module doc); ``model`` is the neutral
    body model the fit was made with."""
    points = fit_points(model, fit)
    if np.any(points[:, 2] <= 0):
        raise ValueError(f"{fit.key}: the fit lies behind its own camera (z <= 0)")
    r, b, target = rigid_to_camera(points, fit.k, k_frame)
    moved = points @ r.T + b
    rms = float(np.sqrt(np.mean(np.sum((_project(moved, k_frame) - target) ** 2, -1))))
    j0 = RestRoot.from_body_model(model)(np.asarray(fit.betas, np.float64))
    orient, transl = cv.transform_smpl_root(r, b, fit.global_orient, fit.transl, j0)
    height = float(target[:, 1].max() - target[:, 1].min())
    return ConvertedFit(np.asarray(orient), np.asarray(transl), rms, height)
