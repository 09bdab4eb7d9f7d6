"""Camera-frame conversions for the real datasets (AGORA, 3DPW, CMU-Panoptic), in numpy.

Everything here maps a dataset's own conventions into ours (docs/architecture.md): metres, the
OpenCV camera frame (x right, y down, z forward), ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

The SMPL parameters follow a rigid camera change ``X_cam = A @ X + b`` like this
(DESIGN.md, Conventions): ``global_orient`` rotates about the rest root joint ``J0`` (it depends on
the betas), so ``R' = A @ R`` and ``transl' = A @ (J0 + transl) + b - J0``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float

from siam_jax.body import rotations


# --------------------------------------------------------------------------- rigid SMPL moves


def transform_smpl_root(
    rotation: Float[np.ndarray, "3 3"],
    translation: Float[np.ndarray, "3"],
    global_orient: Float[np.ndarray, "*b 3"],
    transl: Float[np.ndarray, "*b 3"],
    rest_root: Float[np.ndarray, "*b 3"],
) -> tuple[np.ndarray, np.ndarray]:
    """SMPL ``global_orient``/``transl`` after the rigid map ``X -> rotation @ X + translation``.

    ``rest_root`` is J0, the root joint of the unposed body for the person's betas
    (``siam_jax.body.RestRoot``). A posed SMPL point is ``R (x - J0) + J0 + t``; mapping it gives
    ``A R (x - J0) + A (J0 + t) + b``, i.e. a new orientation ``A R`` and a new
    ``t' = A (J0 + t) + b - J0`` (DESIGN.md, Conventions).
    """
    a = np.asarray(rotation, np.float64)
    b = np.asarray(translation, np.float64)
    j0 = np.asarray(rest_root, np.float64)
    new_rot = a @ rotations.axis_angle_to_matrix(np.asarray(global_orient, np.float64))
    new_t = (j0 + np.asarray(transl, np.float64)) @ a.T + b - j0
    return rotations.matrix_to_axis_angle(new_rot), new_t


# --------------------------------------------------------------------------- projection


def project_points(
    points: Float[np.ndarray, "*b j 3"], intrinsics: Float[np.ndarray, "3 3"]
) -> Float[np.ndarray, "*b j 2"]:
    """Pinhole projection of camera-frame points (OpenCV frame, no distortion)."""
    p = np.asarray(points, np.float64)
    k = np.asarray(intrinsics, np.float64)
    z = p[..., 2:3]
    z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    uv1 = (p / z) @ k.T
    return uv1[..., :2]


def bbox_from_points(
    points_2d: Float[np.ndarray, "j 2"], width: int, height: int
) -> Float[np.ndarray, "4"]:
    """Tight ``x0, y0, x1, y1`` box of 2D points, clipped to the image (pixels)."""
    p = np.asarray(points_2d, np.float64)
    if p.size == 0:
        return np.zeros(4, np.float32)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    box = np.array(
        [
            np.clip(x0, 0, width - 1),
            np.clip(y0, 0, height - 1),
            np.clip(x1, 0, width - 1),
            np.clip(y1, 0, height - 1),
        ]
    )
    return box.astype(np.float32)


def in_image(
    points_2d: Float[np.ndarray, "*b j 2"],
    depth: Float[np.ndarray, "*b j"],
    width: int,
    height: int,
) -> np.ndarray:
    """1.0 where a point lies in front of the camera and inside the image (pixel centres at 0)."""
    u, v = points_2d[..., 0], points_2d[..., 1]
    ok = (depth > 0) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    return ok.astype(np.float32)


def fit_intrinsics(
    points_3d: Float[np.ndarray, "n 3"], points_2d: Float[np.ndarray, "n 2"]
) -> Float[np.ndarray, "3 3"]:
    """Least-squares ``fx, fy, cx, cy`` (no skew) from camera-frame 3D points and their pixels.

    ``u = fx x/z + cx`` and ``v = fy y/z + cy`` are linear in the unknowns; each axis is solved on
    its own. Needs at least 2 points with distinct x/z and y/z.
    """
    p = np.asarray(points_3d, np.float64)
    q = np.asarray(points_2d, np.float64)
    if p.shape[0] < 2:
        raise ValueError(f"fit_intrinsics needs >= 2 points, got {p.shape[0]}")
    xn, yn = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    ones = np.ones_like(xn)
    (fx, cx), *_ = np.linalg.lstsq(np.stack([xn, ones], 1), q[:, 0], rcond=None)
    (fy, cy), *_ = np.linalg.lstsq(np.stack([yn, ones], 1), q[:, 1], rcond=None)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- AGORA

# Sensor size of AGORA's camera, mm (agora_evaluation projection.py: dslr_sens_width/height).
AGORA_SENSOR_MM = (36.0, 20.25)
# 2D GT columns are at 4K (docs/gt_dataframe.md: "gt_joints_2d ... 3840x2160").
AGORA_GT_SIZE = (3840, 2160)


@dataclasses.dataclass(frozen=True)
class AgoraCamera:
    """AGORA camera of one image: focal in mm, position in Unreal world (cm), yaw/pitch (deg)."""

    focal_mm: float
    position_cm: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float
    ground_plane: tuple[float, float, float]  # metres, OpenCV axes; added to the camera position


def agora_camera(
    image_name: str,
    cam_x: float = 0.0,
    cam_y: float = 0.0,
    cam_z: float = 0.0,
    cam_yaw: float = 0.0,
) -> AgoraCamera:
    """The camera for an AGORA image, by the scene rules of agora_evaluation projection.py.

    Fixed cameras are told by the image name: 'hdri' (f 50, at (0, 0, 170) cm), 'cam00'..'cam03'
    (f 18, pitch 30, fixed pose), 'ag2' (f 28, pitch 15); every other scene uses the dataframe's
    camX/Y/Z/Yaw, f 28, and a ground plane of (0, -1.7, 0) m (projection.py: project_2d).
    """
    fixed = {
        "cam00": ((400.0, -275.0, 265.0), 135.0),
        "cam01": ((400.0, 225.0, 265.0), -135.0),
        "cam02": ((-490.0, 170.0, 265.0), -45.0),
        "cam03": ((-490.0, -275.0, 265.0), 45.0),
    }
    if "hdri" in image_name:
        return AgoraCamera(50.0, (0.0, 0.0, 170.0), 0.0, 0.0, (0.0, 0.0, 0.0))
    for key, (pos, yaw) in fixed.items():
        if key in image_name:
            return AgoraCamera(18.0, pos, yaw, 30.0, (0.0, 0.0, 0.0))
    if "ag2" in image_name:
        return AgoraCamera(28.0, (0.0, 0.0, 170.0), 0.0, 15.0, (0.0, 0.0, 0.0))
    return AgoraCamera(
        28.0, (float(cam_x), float(cam_y), float(cam_z)), float(cam_yaw), 0.0, (0.0, -1.7, 0.0)
    )


def agora_intrinsics(focal_mm: float, width: int, height: int) -> Float[np.ndarray, "3 3"]:
    """``fx = f/36 W``, ``fy = f/20.25 H``, principal point at ``(W/2, H/2)``.

    projection.py: focalLength_mm2px(f, sens, c) = f / sens * c * 2 with c = W/2 or H/2.
    1280x720 with f = 28 gives fx = 995.56 (also in ROMP simple_romp/evaluation/eval_AGORA.py).
    """
    sw, sh = AGORA_SENSOR_MM
    return np.array(
        [
            [focal_mm / sw * width, 0.0, width / 2.0],
            [0.0, focal_mm / sh * height, height / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )


def unreal_to_opencv(points: Float[np.ndarray, "*b 3"]) -> Float[np.ndarray, "*b 3"]:
    """Unreal axes -> OpenCV-like world axes: ``(x, y, z) -> (y, -z, x)`` (units unchanged).

    projection.py: unreal2cv2 = np.roll(p, 2, axis=1) * [1, -1, 1].
    """
    p = np.asarray(points, np.float64)
    return np.stack([p[..., 1], -p[..., 2], p[..., 0]], axis=-1)


# projection.py: smpl2opencv flips the signs of y and z, a 180-degree turn about x.
SMPL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def _rotation_deg(axis: str, degrees: float) -> Float[np.ndarray, "3 3"]:
    """Right-handed rotation about the x or y axis (AGORA's projection.py works in degrees)."""
    aa = np.zeros(3)
    aa["xyz".index(axis)] = np.deg2rad(degrees)
    return rotations.axis_angle_to_matrix(aa)


def agora_fit_to_camera(
    camera: AgoraCamera, yaw_deg: float, position_cm: Float[np.ndarray, "3"]
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid map ``(A, b)`` taking a person's SMPL-fit coordinates to the OpenCV camera, metres.

    The chain of projection.py: project2d, written as one rotation and one offset:
      1. ``smpl2opencv``: ``F = diag(1, -1, -1)``;
      2. the person's yaw: a turn about y by ``Yaw - 90`` degrees (AGORA scans carry a
         90-degree offset);
      3. plus the person's position ``unreal2cv2(XYZ / 100)``;
      4. minus the camera position ``unreal2cv2(camXYZ / 100) + ground_plane``;
      5. a turn about y by ``-camYaw``, then about x by ``camPitch`` (degrees).
    So ``A = Rp Rc Ry F`` and ``b = Rp Rc (T - C)``.
    """
    f = SMPL_TO_OPENCV
    ry = _rotation_deg("y", yaw_deg - 90.0)
    t_person = unreal_to_opencv(np.asarray(position_cm, np.float64) / 100.0)
    c_cam = unreal_to_opencv(np.asarray(camera.position_cm, np.float64) / 100.0)
    c_cam = c_cam + np.asarray(camera.ground_plane)
    r_cam = _rotation_deg("x", camera.pitch_deg) @ _rotation_deg("y", -camera.yaw_deg)
    return r_cam @ ry @ f, r_cam @ (t_person - c_cam)


# --------------------------------------------------------------------------- 3DPW


def pw3d_world_to_camera(cam_pose: Float[np.ndarray, "4 4"]) -> tuple[np.ndarray, np.ndarray]:
    """3DPW ``cam_poses[t]`` is world -> camera (3DPW README): ``X_c = R X_w + t``."""
    m = np.asarray(cam_pose, np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"cam_pose has shape {m.shape}, expected (4, 4)")
    return m[:3, :3], m[:3, 3]


# --------------------------------------------------------------------------- builder support

# File names looked for in the configured body-model folder, per gender (smplx's naming:
# smplx/body_models.py SMPL.__init__ builds 'SMPL_{GENDER}.{ext}').
BODY_MODEL_EXTS = (".npz", ".pkl")


def body_model_file(folder: str, gender: str) -> str:
    """Path of ``SMPL_<GENDER>.npz`` (or ``.pkl``) in ``folder``; a clear error when missing."""
    import os

    names = [f"SMPL_{gender.upper()}{ext}" for ext in BODY_MODEL_EXTS]
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"body model folder {folder!r} lacks the {gender} SMPL model: expected one of {names}"
    )


def load_body_models(folder: str, genders: tuple[str, ...]) -> dict:
    """``{gender: BodyModel}`` loaded from ``folder`` (see ``body_model_file``)."""
    from siam_jax.body import load_body_model

    return {g: load_body_model(body_model_file(folder, g), gender=g) for g in genders}


def smpl_joints(
    model,
    betas: np.ndarray,
    body_pose: np.ndarray,
    global_orient: np.ndarray,
    transl: np.ndarray | None,
) -> np.ndarray:
    """The 24 SMPL joints ``[... 24 3]`` of the body model, as float64 numpy (batched).

    ``global_orient`` goes in as ``[... 1 3 3]`` matrices: a batch of 3 axis-angles, ``[3 3]``,
    would otherwise read as one rotation matrix.
    """
    out = model(
        betas=np.asarray(betas, np.float32),
        body_pose=np.asarray(body_pose, np.float32),
        global_orient=rotations.axis_angle_to_matrix(np.asarray(global_orient, np.float64))[
            ..., None, :, :
        ].astype(np.float32),
        transl=None if transl is None else np.asarray(transl, np.float32),
    )
    return np.asarray(out.joints, np.float64)


def check_image(path: str) -> tuple[int, int]:
    """``(width, height)`` of an image file; raises ``ValueError`` naming the file if unreadable."""
    import os

    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            return int(im.size[0]), int(im.size[1])
    except Exception as err:  # PIL raises many types for broken files
        raise ValueError(f"unreadable image {path}: {err}") from err


def keep_tf_off_accelerators() -> None:
    """Builders run JAX (the body model) beside TFDS: TF must not claim the GPU memory."""
    try:
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
    except (ImportError, RuntimeError):  # RuntimeError: devices already initialised
        pass
