"""Procedural multi-person scenes for `siam_synthetic` (docs/data.md, "siam_synthetic").

Example `index` of a split is frame `index % clip_len` of sequence `index // clip_len`. Everything
about a sequence (camera, background, people, their start/end poses and motion) is drawn from
`np.random.default_rng((seed, split_seed, sequence))`, so an example is a pure function of
(cfg, split_seed, index) and generation is order-independent. Frame t of a sequence interpolates
each person's axis-angle pose linearly between two prior samples, drifts the pelvis with a
constant velocity and turns the yaw linearly; the camera and background stay fixed. A share
``empty_fraction`` of the sequences has nobody in it (``is_empty``): the camera and background
are drawn as for any other, the people are dropped.
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp
import numpy as np

from siam_jax.body import rotations
from siam_jax.data import schema
from siam_jax.data.synthetic.prior import sample_betas, sample_body_pose


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    image_size: int = 128
    max_people: int = 5
    clip_len: int = 8
    seed: int = 0
    depth_range: tuple[float, float] = (2.0, 10.0)  # pelvis z, metres
    fov_range_deg: tuple[float, float] = (40.0, 75.0)  # horizontal field of view
    body_model_seed: int = 0  # procedural body model (siam_jax.body.get_body_model)
    # Share of sequences with nobody in them (background only), so that a centre head trained on
    # the set also learns to say "nobody here"; drawn from a stream of its own (``is_empty``).
    empty_fraction: float = 0.0


# Clothing: every vertex gets the colour of one garment slot, picked by its dominant LBS joint
# (SMPL joint order, smplx/joint_names.py). The facing direction must be visible, as it is in real
# images (faces, the fronts of clothes): hair covers the back and the top of the head and the face
# (the front half, ears at the middle) is skin, hair contrasts with the skin, and the torso's
# front shows an open jacket over a light T-shirt (a near-white front panel).
SKIN, HAIR, SHIRT, SLEEVE, PANTS, LEG, SHOES, FRONT = range(8)
_GARMENT_OF_JOINT = (
    PANTS, PANTS, PANTS, SHIRT, LEG, LEG, SHIRT, SHOES, SHOES, SHIRT, SHOES, SHOES,  # 0..11
    SKIN, SHIRT, SHIRT, SKIN, SHIRT, SHIRT, SLEEVE, SLEEVE, SKIN, SKIN, SKIN, SKIN,  # 12..23
)  # fmt: skip
_HEAD = 15
_SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.89, 0.67, 0.53], [0.78, 0.57, 0.42], [0.55, 0.38, 0.26],
     [0.36, 0.24, 0.16]], np.float32)  # fmt: skip
_HAIR_TONES = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.55, 0.40, 0.22], [0.80, 0.68, 0.45],
     [0.50, 0.50, 0.50]], np.float32)  # fmt: skip


@functools.lru_cache(maxsize=2)
def _body(seed: int):
    from siam_jax.body import get_body_model

    model = get_body_model(seed=seed)
    parts = np.argmax(np.asarray(model.weights), axis=1).astype(np.int32)  # dominant LBS joint
    garment = np.asarray(_GARMENT_OF_JOINT, np.int32)[parts]
    # Rest pose: y up, z forward (the subject faces +z). Hair: the head's vertices behind its
    # front half or in its top fifth.
    vt = np.asarray(model.v_template)
    head = parts == _HEAD
    lo, hi = vt[head].min(0), vt[head].max(0)
    face = vt[:, 2] > lo[2] + 0.5 * (hi[2] - lo[2])
    top = vt[:, 1] > lo[1] + 0.8 * (hi[1] - lo[1])
    garment[head & (~face | top)] = HAIR
    # Front panel: the shirt's vertices in the front third of the torso, between the nipples'
    # width (the central 40% of the torso's x extent), like an open jacket over another layer.
    torso = garment == SHIRT
    tlo, thi = vt[torso].min(0), vt[torso].max(0)
    centre_x = 0.5 * (tlo[0] + thi[0])
    front = vt[:, 2] > tlo[2] + 0.66 * (thi[2] - tlo[2])
    central = np.abs(vt[:, 0] - centre_x) < 0.2 * (thi[0] - tlo[0])
    garment[torso & front & central] = FRONT
    return model, parts, garment


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _contrasting(rng: np.random.Generator, palette: np.ndarray, against: np.ndarray) -> np.ndarray:
    """One palette colour per row of ``against`` whose luma differs from it by >= 0.2 (else the
    palette's most different colour)."""
    gap = np.abs(_luma(palette)[None, :] - _luma(against)[:, None])  # [n p]
    ok = gap >= 0.2
    none = ~ok.any(1)
    ok[none] = gap[none] == gap[none].max(1, keepdims=True)
    return np.stack([palette[rng.choice(np.flatnonzero(row))] for row in ok])


def _outfits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per person the colour of each garment slot [n 8 3]: a skin tone and a hair tone from small
    palettes (hair contrasting with the skin), random shirt (the jacket), trousers and shoes, a
    near-white front panel (the T-shirt under the open jacket); short sleeves and shorts show
    skin."""
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES), size=n)] * rng.uniform(0.9, 1.1, (n, 1))
    hair = _contrasting(rng, _HAIR_TONES, skin)
    shirt = rng.uniform(0.05, 0.95, (n, 3))
    pants = rng.uniform(0.05, 0.8, (n, 3))
    shoes = rng.uniform(0.0, 0.4, (n, 3))
    sleeve = np.where(rng.random((n, 1)) < 0.5, shirt, skin)
    leg = np.where(rng.random((n, 1)) < 0.7, pants, skin)
    # The inner layer: a light T-shirt (near-white, slightly tinted) under the open jacket.
    front = rng.uniform(0.85, 1.0, (n, 1)) - rng.uniform(0.0, 0.1, (n, 3))
    slots = [skin, hair, shirt, sleeve, pants, leg, shoes, front]
    return np.clip(np.stack(slots, 1), 0, 1).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random gradient, smooth noise, stripe/checker texture or pixel noise, float RGB in [0, 1].

    Pixel noise (version 1.5.0): independent uniform RGB per pixel, contrast U(0.3, 1) about a
    random mean, so the centre head also learns that a frame of pure noise holds nobody (before
    it, a noise video drew a person in most frames: the sensor noise below is only 3%).
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    kind = rng.integers(4)
    c0, c1 = rng.random(3), rng.random(3)
    if kind == 3:
        contrast = rng.uniform(0.3, 1.0)
        mean = rng.uniform(contrast / 2, 1 - contrast / 2)
        img = mean + contrast * (rng.random((size, size, 3)) - 0.5)
        return np.clip(img, 0, 1).astype(np.float32)
    if kind == 0:  # linear gradient in a random direction
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * xx + np.sin(a) * yy + 1.5) / 3.0
    elif kind == 1:  # smooth value noise: bilinear upsampling of a coarse random grid
        g = int(rng.integers(3, 9))
        coarse = rng.random((g, g))
        gy, gx = yy * (g - 1), xx * (g - 1)
        i0, j0 = np.minimum(gy.astype(int), g - 2), np.minimum(gx.astype(int), g - 2)
        fy, fx = gy - i0, gx - j0
        t = (coarse[i0, j0] * (1 - fy) * (1 - fx) + coarse[i0 + 1, j0] * fy * (1 - fx)
             + coarse[i0, j0 + 1] * (1 - fy) * fx + coarse[i0 + 1, j0 + 1] * fy * fx)  # fmt: skip
    else:  # stripes or checker
        f = rng.uniform(3, 20)
        t = (np.floor(xx * f) + (rng.random() < 0.5) * np.floor(yy * f)) % 2
    img = c0 * t[..., None] + c1 * (1 - t[..., None])
    img += rng.normal(0, 0.03, img.shape)  # sensor-like noise
    return np.clip(img, 0, 1).astype(np.float32)


def is_empty(cfg: SceneConfig, split_seed: int, seq: int) -> bool:
    """Whether sequence ``seq`` has nobody in it: ``U(0, 1) < empty_fraction`` from the stream
    ``(seed, split_seed, seq, 1)``, apart from the scene's own, so the fraction blanks some
    sequences without changing what the others draw."""
    if not 0.0 <= cfg.empty_fraction < 1.0:
        raise ValueError(f"SceneConfig.empty_fraction={cfg.empty_fraction} is not in [0, 1)")
    return bool(np.random.default_rng((cfg.seed, split_seed, seq, 1)).random() < cfg.empty_fraction)


def _sequence(cfg: SceneConfig, split_seed: int, seq: int) -> dict:
    """All random draws of one sequence (the people's arrays have 0 rows in an empty one)."""
    rng = np.random.default_rng((cfg.seed, split_seed, seq))
    s = cfg.image_size
    fov = np.deg2rad(rng.uniform(*cfg.fov_range_deg))
    focal = (s / 2) / np.tan(fov / 2)
    c = (s - 1) / 2.0  # pixel centres at integer coordinates: the image centre is (s-1)/2
    K = np.array([[focal, 0, c], [0, focal, c], [0, 0, 1]], np.float32)
    n = int(rng.integers(1, cfg.max_people + 1))
    z = rng.uniform(*cfg.depth_range, n)
    u = rng.uniform(0.15 * s, 0.85 * s, n)  # pelvis pixel; close pairs overlap and occlude
    v = rng.uniform(0.35 * s, 0.65 * s, n)
    start = np.stack([(u - c) * z / focal, (v - c) * z / focal, z], 1)
    out = dict(
        K=K,
        background=_background(rng, s),
        betas=np.stack([sample_betas(rng) for _ in range(n)]),
        pose0=np.stack([sample_body_pose(rng) for _ in range(n)]),
        pose1=np.stack([sample_body_pose(rng) for _ in range(n)]),
        start=start,
        velocity=rng.normal(0, 0.05, (n, 3)) * np.array([1, 0.1, 1]),  # metres per frame
        yaw0=rng.uniform(-np.pi, np.pi, n),
        yaw_rate=rng.normal(0, 0.05, n),  # radians per frame
        lean=rng.normal(0, 0.08, (n, 2)),  # small pitch / roll, radians
        outfits=_outfits(rng, n),
    )
    if is_empty(cfg, split_seed, seq):  # people drawn as usual, then dropped: same camera, scene
        out.update({k: v[:0] for k, v in out.items() if k not in ("K", "background")})
    return out


def _about(axis: int, angles: np.ndarray) -> np.ndarray:
    """[n 3 3] right-handed rotations by ``angles`` [n] (radians) about coordinate ``axis``."""
    aa = np.zeros((len(angles), 3))
    aa[:, axis] = angles
    return rotations.axis_angle_to_matrix(aa)


def frame_params(cfg: SceneConfig, split_seed: int, index: int) -> dict:
    """SMPL params, camera and background of example `index` (no rendering)."""
    seq, t = divmod(index, cfg.clip_len)
    p = _sequence(cfg, split_seed, seq)
    a = t / max(cfg.clip_len - 1, 1)
    body_pose = ((1 - a) * p["pose0"] + a * p["pose1"]).astype(np.float32)
    yaw = p["yaw0"] + p["yaw_rate"] * t
    # SMPL rest pose is y-up, facing +z; the OpenCV camera is y-down: flip by pi about x, after
    # the yaw about the body's vertical axis and a small lean (pitch about x, then roll about z).
    rot = (
        _about(0, np.full_like(yaw, np.pi))
        @ _about(2, p["lean"][:, 1])
        @ _about(0, p["lean"][:, 0])
        @ _about(1, yaw)
    )
    global_orient = rotations.matrix_to_axis_angle(rot).astype(np.float32)
    pelvis = p["start"] + p["velocity"] * t
    pelvis[:, 2] = np.maximum(pelvis[:, 2], 1.5)  # drift never brings a person into the camera
    return dict(seq=seq, t=t, body_pose=body_pose, global_orient=global_orient, pelvis=pelvis,
                **{k: p[k] for k in ("K", "background", "betas", "outfits")})  # fmt: skip


def _pose_people(model, fp: dict, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices [n v 3], joints [n 24 3] and ``transl`` [n 3] putting each pelvis at its place.

    The body model runs on ``m`` (max_people) slots so it compiles once per config.
    """
    n = len(fp["betas"])

    def pad(x):
        return np.concatenate([x, np.zeros((m - n, *x.shape[1:]), x.dtype)])

    out = model(betas=jnp.asarray(pad(fp["betas"])), body_pose=jnp.asarray(pad(fp["body_pose"])),
                global_orient=jnp.asarray(pad(fp["global_orient"])))  # fmt: skip
    verts0, joints0 = np.asarray(out.vertices)[:n], np.asarray(out.joints)[:n]
    # smplx adds transl after posing, so the pelvis lands at joints[0] + transl.
    transl = (fp["pelvis"] - joints0[:, 0].astype(np.float64)).astype(np.float32)
    return verts0 + transl[:, None], joints0 + transl[:, None], transl


def _project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    p = points @ k.T.astype(np.float64)
    return p[..., :2] / p[..., 2:3]


def _visibility(j2d, joints_z, i: int, person_map, depth_map, s: int) -> np.ndarray:
    """Inside the image and not behind a *different* person's surface at the joint's pixel (the
    person's own surface is always in front of its inner joints)."""
    px = np.rint(j2d).astype(int)
    inside = (px >= 0).all(1) & (px < s).all(1) & (joints_z > 0)
    pxc = np.clip(px, 0, s - 1)
    owner = person_map[pxc[:, 1], pxc[:, 0]]
    dz = depth_map[pxc[:, 1], pxc[:, 0]]
    occluded = (owner >= 0) & (owner != i) & (dz < joints_z)
    return (inside & ~occluded).astype(np.float32)


def generate_example(index: int, split_seed: int, cfg: SceneConfig) -> dict:
    """One example in the schema of siam_jax.data.schema (numpy; usable without TFDS)."""
    from siam_jax.render import render_meshes

    model, parts, garment = _body(cfg.body_model_seed)
    fp = frame_params(cfg, split_seed, index)
    n, s, m, K = len(fp["betas"]), cfg.image_size, cfg.max_people, fp["K"]
    verts, joints, transl = _pose_people(model, fp, m)
    # Padded meshes (renderer compiled once per config) sit behind the camera (z < 0), which the
    # rasteriser drops.
    hidden = np.full((m - n, *verts.shape[1:]), -1.0, np.float32)
    colors = np.concatenate([fp["outfits"][:, garment], np.zeros((m - n, *garment.shape, 3))])
    r = render_meshes(np.concatenate([verts, hidden]), model.faces, K, s, s,
                      colors=colors.astype(np.float32), background=fp["background"],
                      vertex_parts=parts, with_alone=True, min_patch=4)  # fmt: skip
    person_map, depth_map, alone = np.asarray(r.person), np.asarray(r.depth), np.asarray(r.alone)
    j2d = _project(joints, K).astype(np.float32)
    v2d = _project(verts, K)
    persons = []
    for i in range(n):
        pr = schema.empty_person()
        pr.update(betas=fp["betas"][i], global_orient=fp["global_orient"][i],
                  body_pose=fp["body_pose"][i], transl=transl[i],
                  joints_3d=joints[i].astype(np.float32), joints_2d=j2d[i])  # fmt: skip
        pr["visibility"] = _visibility(j2d[i], joints[i, :, 2], i, person_map, depth_map, s)
        lo, hi = np.clip(v2d[i].min(0), 0, s - 1), np.clip(v2d[i].max(0), 0, s - 1)
        pr["bbox"] = np.concatenate([lo, hi]).astype(np.float32)
        # Occlusion %: the person's silhouette rendered alone (same rasterisation pass, one
        # scatter per person) vs the pixels it still owns in the composite; 0 when off-image.
        area, own = alone[i].sum(), (person_map == i).sum()
        pr["occlusion"] = np.float32(100.0 * (1 - own / area) if area else 0.0)
        pr.update(has_smpl=True, has_3d=True, has_2d=True, valid=True, gender=0, kid=False)
        pr.update(has_pose=True, has_global_orient=True, has_betas=True, has_transl=True,
                  smpl_source=np.int32(schema.SMPL_SOURCES.index("dataset")))  # fmt: skip
        schema.check_person(pr, f"siam_synthetic example {index}")
        persons.append(pr)
    name = f"{split_seed}_{fp['seq']:06d}"
    return {
        "image": (np.asarray(r.image) * 255 + 0.5).astype(np.uint8),
        "intrinsics": K,
        "sequence_id": name,
        "frame_index": np.int64(fp["t"]),
        "image_name": f"{name}_{fp['t']:03d}.png",
        "persons": schema.stack_persons(persons),
        **schema.frame_annotation(True),  # every rendered person is a stored person
        # Not in the TFDS schema (removed by the builder): maps for tests and debugging.
        "_maps": {"person": person_map, "depth": depth_map, "part": np.asarray(r.part)},
    }
