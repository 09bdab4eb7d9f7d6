"""Per-frame geometry of the input pipeline: fit to the network input, and train-time augmentation.

Every augmentation is a change of camera, so the SMPL parameters, 3D joints, 2D joints, boxes and
intrinsics stay consistent with the warped image:

* horizontal flip: mirror the world through the camera's x = 0 plane (``M = diag(-1, 1, 1)``) and
  the image through u -> W - 1 - u (pixel centres at integers, docs/architecture.md); left and right
  body parts swap (SPIN constants.py flip permutations, via ``siam_jax.body.joint_sets``);
* in-plane rotation: a camera roll ``Rz`` about the optical axis; the image moves by the homography
  ``K Rz K^-1``, which is affine because ``Rz`` keeps z;
* scale and translation: an image-plane similarity ``S`` (zoom and crop/pad) that changes only the
  intrinsics (``K' = S K``).

The whole image map is one 3x3 affine ``A = S K1 Rz K1^-1 F`` (``F`` the pixel flip, ``K1`` the
flipped intrinsics), the whole 3D map one rotation ``R = Rz M``. SMPL's ``global_orient`` rotates
about the rest root joint J0 (smplx/lbs.py: batch_rigid_transform keeps J0 fixed), so a camera
rotation R maps ``transl`` to ``R (J0 + t) - J0``, not ``R t`` (docs/architecture.md conventions);
J0 comes from ``siam_jax.body.RestRoot``.

The dataset's own joints (``schema.KEYPOINT_FIELDS``, the named superset) move with the same maps:
on a flip by the superset's left/right permutation (``keypoints.KEYPOINT_FLIP_PERM``, by name).
After the transform the 2D visibilities (``visibility``, ``keypoints_2d_visibility``) are
recomputed: a point the crop, zoom, shift or rotation pushed outside the network input (pixel
edges [-0.5, S - 0.5), as the builders test at build time) gets visibility 0 (issue 20).

Everything here is numpy (images warped with PIL, bilinear; rotations through the numpy path of
``siam_jax.body.rotations``), so Grain workers never run JAX.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
from jaxtyping import Float, Int, UInt8

from siam_jax.body import RestRoot, joint_sets, rotations
from siam_jax.body import keypoints as keypoints_lib
from siam_jax.data import schema

_MIRROR = np.diag([-1.0, 1.0, 1.0])


# SMPL-24 and H36M-17 left/right permutations (SPIN constants.py, via siam_jax.body).
_SMPL_FLIP_PERM = np.asarray(joint_sets.SMPL_JOINTS_FLIP_PERM, dtype=np.int64)
_H36M_FLIP_PERM = np.asarray(joint_sets.H36M_FLIP_PERM, dtype=np.int64)
_KEYPOINT_FLIP_PERM = np.asarray(keypoints_lib.KEYPOINT_FLIP_PERM, dtype=np.int64)


# ------------------------------------------------------------------------------ parameters
@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """One draw of augmentation parameters; a clip shares one draw over all its frames."""

    flip: bool = False
    rotation: float = 0.0  # radians, camera roll about the optical axis
    scale: float = 1.0  # zoom relative to the fit-the-whole-image scale
    shift: tuple[float, float] = (0.0, 0.0)  # output pixels the image centre moves by
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)  # brightness, contrast, saturation

    @property
    def is_identity(self) -> bool:
        return self == AugmentParams()


@dataclasses.dataclass(frozen=True)
class AugmentRanges:
    """The ranges ``sample_params`` draws from (``config.data.augment``'s keys)."""

    enabled: bool
    scale: tuple[float, float]
    rotation_degrees: float
    flip_prob: float
    color_jitter: float
    translate: float


def augment_ranges(augment_config, overrides: Mapping[str, object] | None = None) -> AugmentRanges:
    """``config.data.augment`` with one dataset's overrides (the mixture's third entry field)."""
    fields = [f.name for f in dataclasses.fields(AugmentRanges)]
    values = {k: augment_config[k] for k in fields}
    for k, v in dict(overrides or {}).items():
        if k not in values:
            raise ValueError(f"unknown augmentation override {k!r}; known: {fields}")
        values[k] = v
    lo, hi = (float(x) for x in values["scale"])
    if not 0 < lo <= hi:
        raise ValueError(f"augmentation scale range must satisfy 0 < lo <= hi, got {(lo, hi)}")
    values["scale"] = (lo, hi)
    return AugmentRanges(**values)


def sample_params(rng: np.random.Generator, augment_config, input_size: int) -> AugmentParams:
    """Draws parameters from ``config.data.augment`` (ranges documented in configs/default.py)."""
    if not augment_config.enabled:
        return AugmentParams()
    lo, hi = augment_config.scale
    # Log-uniform zoom, so zooming in and out by the same factor is equally likely.
    scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    rot = math.radians(float(augment_config.rotation_degrees)) * float(rng.uniform(-1.0, 1.0))
    shift = rng.uniform(-1.0, 1.0, size=2) * float(augment_config.translate) * input_size
    flip = bool(rng.uniform() < float(augment_config.flip_prob))
    c = float(augment_config.color_jitter)
    color = tuple(float(x) for x in rng.uniform(1.0 - c, 1.0 + c, size=3))
    return AugmentParams(
        flip=flip, rotation=rot, scale=scale, shift=(float(shift[0]), float(shift[1])), color=color
    )


# ------------------------------------------------------------------------------ frame transform
@dataclasses.dataclass(frozen=True)
class FrameTransform:
    """The camera change of one frame: pixel map, 3D rotation, flip, and the new intrinsics."""

    pixel: np.ndarray  # [3 3] affine, input pixels (centre convention) -> output pixels
    rotation: np.ndarray  # [3 3] camera-frame map of 3D points (Rz @ M if flipped)
    roll: np.ndarray  # [3 3] Rz alone (applied after the flip)
    flip: bool
    intrinsics: np.ndarray  # [3 3] of the output image
    out_size: int


def frame_transform(
    image_hw: tuple[int, int],
    intrinsics: Float[np.ndarray, "3 3"],
    params: AugmentParams,
    out_size: int,
) -> FrameTransform:
    """Builds the camera change fitting an ``image_hw`` image into ``out_size`` square (kept aspect,
    zero padding) after the augmentation ``params``."""
    h, w = int(image_hw[0]), int(image_hw[1])
    k = np.asarray(intrinsics, np.float64)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)) or abs(k[0, 0] * k[1, 1]) < 1e-12:
        raise ValueError(f"intrinsics must be a finite, invertible [3 3] matrix, got {k.tolist()}")
    flip_px = np.eye(3)
    if params.flip:
        # u -> W - 1 - u; K1 = F K M keeps projection consistent: K1 (M X) = F (K X).
        flip_px = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        k = flip_px @ k @ _MIRROR
    c, s = math.cos(params.rotation), math.sin(params.rotation)
    roll = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rot_px = k @ roll @ np.linalg.inv(k)
    rot_px[2] = (0.0, 0.0, 1.0)  # exact affine (Rz keeps z)
    # Fit: the whole image inside the square (aspect kept), then the augmentation zoom; the
    # image centre ((W-1)/2, (H-1)/2) goes to the output centre plus the shift.
    zoom = out_size / max(h, w) * params.scale
    # Pixel centres at integers: edges scale, so u' + 0.5 = zoom (u + 0.5) + offset.
    centre_in = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    centre_out = np.array([(out_size - 1) / 2.0, (out_size - 1) / 2.0]) + np.asarray(params.shift)
    similarity = np.eye(3)
    similarity[0, 0] = similarity[1, 1] = zoom
    similarity[:2, 2] = centre_out - zoom * centre_in
    pixel = similarity @ rot_px @ flip_px
    rotation = roll @ _MIRROR if params.flip else roll
    return FrameTransform(
        pixel=pixel,
        rotation=rotation,
        roll=roll,
        flip=params.flip,
        intrinsics=similarity @ k,
        out_size=out_size,
    )


def apply_affine(points: Float[np.ndarray, "*n 2"], a: Float[np.ndarray, "3 3"]) -> np.ndarray:
    """Applies the 3x3 affine ``a`` to 2D points."""
    p = np.asarray(points, np.float64)
    return p @ a[:2, :2].T + a[:2, 2]


# ------------------------------------------------------------------------------ SMPL flip
def flip_axis_angles(
    pose: Float[np.ndarray, "n 24 3"], perm: Int[np.ndarray, " 24"]
) -> Float[np.ndarray, "n 24 3"]:
    """SPIN flip_pose: swap left/right joints and negate the y and z axis-angle components
    (equivalently R -> M R M with M = diag(-1, 1, 1))."""
    out = np.asarray(pose)[:, perm].copy()
    out[..., 1:] *= -1.0
    return out


def transform_persons(
    persons: Mapping[str, np.ndarray],
    tr: FrameTransform,
    rest_root: RestRoot | None,
) -> dict[str, np.ndarray]:
    """Applies the camera change ``tr`` to a dict of person arrays with a leading axis n.

    Needs ``rest_root`` to move ``transl`` (it may be None only when no person ``has_smpl``).
    """
    out = {k: np.array(v, copy=True) for k, v in persons.items()}
    n = out["betas"].shape[0]
    if n == 0:
        return out
    pose = np.concatenate([out["global_orient"][:, None], out["body_pose"]], axis=1)  # [n 24 3]
    j3d = out["joints_3d"].astype(np.float64)
    j2d = out["joints_2d"].astype(np.float64)
    vis = out["visibility"]
    h36m = out["joints_h36m_3d"].astype(np.float64)
    h36m_vis = out["h36m_visibility"]
    if rest_root is None:
        if np.any(out["has_smpl"]):
            raise ValueError("transform_persons: persons with has_smpl need a rest_root (J0)")
        root0 = np.zeros((n, 3))
    else:
        root0 = rest_root(out["betas"], out.get("gender"))
    transl = out["transl"].astype(np.float64)
    if tr.flip:
        perm, h36m_perm = _SMPL_FLIP_PERM, _H36M_FLIP_PERM
        pose = flip_axis_angles(pose, perm)
        j3d = j3d[:, perm] @ _MIRROR
        j2d, vis = j2d[:, perm], vis[:, perm]
        h36m = h36m[:, h36m_perm] @ _MIRROR
        h36m_vis = h36m_vis[:, h36m_perm]
        # The flipped pose re-posed with the same betas keeps its root at J0, while the mirrored
        # body's root sits at M (J0 + t): so t' = M (J0 + t) - J0 (= M t for J0_x = 0).
        transl = (root0 + transl) @ _MIRROR - root0
    roll = tr.roll
    rot0 = rotations.axis_angle_to_matrix(pose[:, 0].astype(np.float64))  # [n 3 3], numpy
    pose[:, 0] = rotations.matrix_to_axis_angle(roll[None] @ rot0)
    transl = (root0 + transl) @ roll.T - root0
    j3d = j3d @ roll.T
    h36m = h36m @ roll.T
    # Flip is already in j2d's permutation; the pixel map includes the pixel flip.
    j2d = apply_affine(j2d, tr.pixel)
    out["global_orient"] = pose[:, 0].astype(np.float32)
    out["body_pose"] = pose[:, 1:].astype(np.float32)
    out["transl"] = transl.astype(np.float32)
    out["joints_3d"] = j3d.astype(np.float32)
    out["joints_2d"] = j2d.astype(np.float32)
    out["visibility"] = (np.asarray(vis, np.float32) * in_input(j2d, tr.out_size)).astype(
        np.float32
    )
    out["joints_h36m_3d"] = h36m.astype(np.float32)
    out["h36m_visibility"] = np.asarray(h36m_vis, np.float32)
    out["bbox"] = transform_boxes(out["bbox"], tr.pixel)
    out.update(transform_keypoints(out, tr))
    vis2 = out["keypoints_2d_visibility"] * in_input(out["keypoints_2d"], tr.out_size)
    out["keypoints_2d_visibility"] = vis2.astype(np.float32)
    out["keypoints_2d"] = np.where(vis2[..., None] > 0, out["keypoints_2d"], 0.0).astype(np.float32)
    # has_keypoints_2d keeps its meaning (the dataset labels 2D points for this person); a person
    # whose points all left the input simply has no visible point to supervise.
    return out


def in_input(points: Float[np.ndarray, "*n 2"], size: int) -> Float[np.ndarray, " *n"]:
    """1 where a pixel point lies inside a ``size`` square input (pixel edges [-0.5, size -
    0.5), pixel centres at integers), else 0."""
    p = np.asarray(points, np.float64)
    inside = np.all((p >= -0.5) & (p < size - 0.5) & np.isfinite(p), axis=-1)
    return inside.astype(np.float32)


def transform_keypoints(persons: Mapping[str, np.ndarray], tr) -> dict[str, np.ndarray]:
    """``schema.KEYPOINT_FIELDS`` arrays ``[n k ...]`` after the camera change ``tr``: left/right
    swap by name on a flip, 3D points rotated by ``tr.rotation`` (which includes the mirror), 2D
    points mapped by ``tr.pixel`` (which includes the pixel flip), as ``transform_persons`` moves
    ``joints_3d`` / ``joints_2d``. Visibilities are permuted, not recomputed (``transform_persons``
    does that)."""
    kp2d = np.asarray(persons["keypoints_2d"], np.float64)
    kp3d = np.asarray(persons["keypoints_3d"], np.float64)
    vis2d = np.asarray(persons["keypoints_2d_visibility"], np.float32)
    vis3d = np.asarray(persons["keypoints_3d_visibility"], np.float32)
    if tr.flip:
        perm = _KEYPOINT_FLIP_PERM
        kp2d, kp3d, vis2d, vis3d = kp2d[:, perm], kp3d[:, perm], vis2d[:, perm], vis3d[:, perm]
    kp3d = kp3d @ np.asarray(tr.rotation, np.float64).T
    kp2d = apply_affine(kp2d, tr.pixel)
    # Unlabelled points stay exactly zero, so a stored example and its augmented copy agree on
    # which entries carry data.
    return {
        "keypoints_2d": np.where(vis2d[..., None] > 0, kp2d, 0.0).astype(np.float32),
        "keypoints_2d_visibility": vis2d,
        "keypoints_3d": np.where(vis3d[..., None] > 0, kp3d, 0.0).astype(np.float32),
        "keypoints_3d_visibility": vis3d,
    }


def transform_boxes(boxes: Float[np.ndarray, "n 4"], a: np.ndarray) -> np.ndarray:
    """Maps the 4 corners by the affine ``a`` and takes their bounds (a rotated box grows to its
    axis-aligned hull): person boxes and ``ignore_boxes``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # [n 4 2]
    c = apply_affine(corners, a)
    return np.concatenate([c.min(axis=1), c.max(axis=1)], axis=-1).astype(np.float32)


# ------------------------------------------------------------------------------ image
def warp_image(
    image: UInt8[np.ndarray, "h w 3"],
    pixel: Float[np.ndarray, "3 3"],
    out_size: int,
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> UInt8[np.ndarray, "s s 3"]:
    """Resamples ``image`` so that output pixel p shows input pixel ``pixel^-1 p`` (bilinear,
    zero outside), then applies the colour jitter ``color``. Strong downscaling first box-filters
    by an integer factor to avoid aliasing."""
    from PIL import Image

    img = np.ascontiguousarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [h w 3], got {img.dtype} {img.shape}")
    a = np.asarray(pixel, np.float64)
    pil = Image.fromarray(img)
    zoom = math.sqrt(abs(np.linalg.det(a[:2, :2])))
    factor = int(1.0 / zoom) if zoom > 0 else 1
    if factor >= 2:
        # Box reduce: edge coordinates divide by the factor, u_r + 0.5 = (u + 0.5) / f.
        pil = pil.reduce(factor)
        red = np.array(
            [[1.0 / factor, 0, 0.5 / factor - 0.5], [0, 1.0 / factor, 0.5 / factor - 0.5]]
        )
        red = np.vstack([red, [0.0, 0.0, 1.0]])
        a = a @ np.linalg.inv(red)
    inv = np.linalg.inv(a)
    # PIL samples output pixel centres at (x + 0.5) in edge coordinates and reads the input in edge
    # coordinates; convert our centre-convention map: x_in = B x_out + b - B (0.5, 0.5) + 0.5.
    lin, off = inv[:2, :2], inv[:2, 2]
    off = off - lin @ np.array([0.5, 0.5]) + 0.5
    coeffs = (lin[0, 0], lin[0, 1], off[0], lin[1, 0], lin[1, 1], off[1])
    out = pil.transform(
        (out_size, out_size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    if tuple(color) != (1.0, 1.0, 1.0):
        out = _jitter_pil(out, color)
    return np.asarray(out)


_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma weights


def _jitter_affine(
    factors: tuple[float, float, float], mean_rgb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Brightness b, contrast c, saturation s as one affine colour map ``x -> A x + d``.

    x1 = b x; x2 = c (x1 - m) + m with m the mean grey of x1; x3 = s x2 + (1 - s) grey(x2).
    The grey weights sum to 1, so x3 = c b (s I + (1 - s) 1 L^T) x + (1 - c) m.
    """
    b, c, s = factors
    m = b * float(_LUMA @ mean_rgb)
    a = c * b * (s * np.eye(3) + (1.0 - s) * np.outer(np.ones(3), _LUMA))
    return a, np.full(3, (1.0 - c) * m)


def color_jitter(
    image: Float[np.ndarray, "h w 3"], factors: tuple[float, float, float]
) -> Float[np.ndarray, "h w 3"]:
    """Brightness (scale), contrast (blend with the mean grey), saturation (blend with the grey
    image), torchvision ColorJitter style in a fixed order; clipped to [0, 1]."""
    img = np.asarray(image, np.float32)
    a, d = _jitter_affine(factors, img.reshape(-1, 3).mean(0))
    out = img @ a.T.astype(np.float32) + d.astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def _jitter_pil(pil_image, factors):
    """The colour jitter in uint8 with PIL's C colour-matrix conversion (rounded, clipped): the
    same affine map as ``color_jitter``, several times faster than float numpy on 512x512."""
    from PIL import ImageStat

    mean = np.asarray(ImageStat.Stat(pil_image).mean[:3]) / 255.0
    a, d = _jitter_affine(factors, mean)
    matrix = tuple(float(x) for row in np.concatenate([a, 255.0 * d[:, None]], 1) for x in row)
    return pil_image.convert("RGB", matrix)


def augment_frame(
    image: UInt8[np.ndarray, "h w 3"],
    intrinsics: Float[np.ndarray, "3 3"],
    persons: Mapping[str, np.ndarray],
    params: AugmentParams,
    out_size: int,
    rest_root: RestRoot | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Fits and augments one frame: returns (image float32 [s s 3] in [0, 1], intrinsics [3 3],
    persons). ``params = AugmentParams()`` only fits the image (evaluation)."""
    tr = frame_transform(image.shape[:2], intrinsics, params, out_size)
    warped = warp_image(image, tr.pixel, out_size, color=params.color)
    warped = warped.astype(np.float32)
    warped *= np.float32(1.0 / 255.0)
    return warped, tr.intrinsics.astype(np.float32), transform_persons(persons, tr, rest_root)


def persons_from_record(persons: Mapping[str, object], where: str) -> dict[str, np.ndarray]:
    """The TFDS ``persons`` sequence (lists, possibly empty) -> dict of arrays [n ...], every
    ``schema.STORED_PERSON_FIELDS`` key (schema 2, keypoint superset included)."""
    out = {}
    n = None
    for name, (shape, dtype) in schema.STORED_PERSON_FIELDS.items():
        if name not in persons:
            raise ValueError(f"{where}: persons is missing key {name!r}")
        arr = np.asarray(persons[name], dtype=dtype)
        if arr.size == 0:
            arr = arr.reshape((0, *shape))
        if arr.shape[1:] != shape:
            raise ValueError(
                f"{where}: persons[{name!r}] has shape {arr.shape}, expected [n {shape}]"
            )
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"{where}: persons[{name!r}] has {arr.shape[0]} persons, others {n}")
        n = arr.shape[0]
        out[name] = arr
    return out
