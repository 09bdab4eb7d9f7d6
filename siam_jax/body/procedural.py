"""A procedural SMPL-compatible body model (DESIGN.md, "Body model").

Same sizes as SMPL (6890 vertices, 13776 faces, 24 joints in the SMPL tree, 10 shape directions,
207 pose-blend inputs), T-pose, y up, left side at +x, about 1.7 m tall, like SMPL's template.

The mesh is seven closed tubes around straight centre lines: a trunk (crotch to head top), two
arms (collar to finger tips), two legs (hip to ankle) and two feet (heel to toe). Each closed
genus-0 tube with V_i vertices has 2 V_i - 4 faces, so the seven give 2*6890 - 28 faces; each of
the six limb tubes adds four hidden faces (a double-sided cross inside its first ring, which
sits inside the parent tube) to reach SMPL's 13776. Every joint lies on a centre line at an
exact ring, so the J_regressor row is the uniform mean of that ring (a convex combination that
reproduces the joint). The right side is the exact mirror of the left; `sym_idx` is exact.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from siam_jax.body import joint_sets
from siam_jax.body.model import BodyModel, body_model_from_arrays

NUM_VERTICES = 6890
NUM_FACES = 13776

# Rest joints (metres), left side; loosely the SMPL neutral template (pelvis ~0.24 m below the
# vertex centroid, T-pose arms). Right joints are mirrored.
_PELVIS_Y = -0.24
_J = {
    "pelvis": (0.0, _PELVIS_Y, 0.0),
    "left_hip": (0.085, -0.33, 0.0),
    "spine1": (0.0, -0.12, 0.0),
    "left_knee": (0.095, -0.72, 0.0),
    "spine2": (0.0, 0.01, 0.0),
    "left_ankle": (0.10, -1.11, 0.0),
    "spine3": (0.0, 0.07, 0.0),
    "left_foot": (0.10, -1.17, 0.11),
    "neck": (0.0, 0.27, 0.0),
    "left_collar": (0.08, 0.20, 0.0),
    "head": (0.0, 0.34, 0.0),
    "left_shoulder": (0.18, 0.20, 0.0),
    "left_elbow": (0.44, 0.20, 0.0),
    "left_wrist": (0.68, 0.20, 0.0),
    "left_hand": (0.77, 0.20, 0.0),
}

# Tube layouts: (ring size m, number of rings n). Vertex counts n*m + 2 (two poles) sum to 6890:
# trunk 44*55+2 = 2422, arm 20*50+2 = 1002, leg 28*37+2 = 1038, foot 16*12+2 = 194.
_TRUNK = (44, 55)
_ARM = (20, 50)
_LEG = (28, 37)
_FOOT = (16, 12)

# Cross-section half-extents along the tube (position along the axis, r1, r2), linearly
# interpolated. Trunk: along y, (x half-width, z half-depth).
_TRUNK_PROFILE = np.array([
    (-0.40, 0.03, 0.03), (-0.385, 0.10, 0.07), (-0.36, 0.14, 0.095), (-0.30, 0.165, 0.11),
    (-0.22, 0.17, 0.11), (-0.12, 0.145, 0.10), (-0.02, 0.145, 0.10), (0.08, 0.165, 0.11),
    (0.17, 0.18, 0.11), (0.22, 0.15, 0.09), (0.25, 0.08, 0.065), (0.27, 0.055, 0.055),
    (0.30, 0.055, 0.06), (0.33, 0.075, 0.09), (0.38, 0.085, 0.10), (0.44, 0.085, 0.095),
    (0.49, 0.07, 0.08), (0.515, 0.045, 0.05), (0.53, 0.01, 0.01),
])  # fmt: skip
_TRUNK_RANGE = (-0.41, 0.535)
# Arm: along +x, (y half-height, z half-depth).
_ARM_PROFILE = np.array([
    (0.05, 0.05, 0.05), (0.18, 0.055, 0.055), (0.30, 0.045, 0.045), (0.44, 0.036, 0.038),
    (0.56, 0.037, 0.037), (0.68, 0.026, 0.03), (0.72, 0.018, 0.045), (0.80, 0.014, 0.045),
    (0.86, 0.010, 0.030), (0.875, 0.005, 0.01),
])  # fmt: skip
_ARM_RANGE = (0.04, 0.88)
# Leg: along -y (position = -y), (x half-width, z half-depth).
_LEG_PROFILE = np.array([
    (0.20, 0.07, 0.07), (0.33, 0.09, 0.09), (0.50, 0.07, 0.075), (0.72, 0.05, 0.055),
    (0.85, 0.055, 0.06), (1.02, 0.038, 0.042), (1.11, 0.036, 0.042), (1.15, 0.03, 0.035),
    (1.165, 0.01, 0.01),
])  # fmt: skip
_LEG_RANGE = (0.19, 1.17)
# Foot: along +z, (x half-width, y half-height), centre line at y = -1.16.
_FOOT_PROFILE = np.array([
    (-0.07, 0.02, 0.02), (-0.05, 0.035, 0.035), (0.02, 0.04, 0.04), (0.11, 0.048, 0.025),
    (0.17, 0.04, 0.017), (0.19, 0.01, 0.01),
])  # fmt: skip
_FOOT_RANGE = (-0.075, 0.195)
_FOOT_Y = -1.165


class _Tube:
    """A closed tube around a straight axis: rings of m vertices plus a pole at each end."""

    def __init__(self, origin, axis, e1, e2, t_range, profile, m, n, joint_ts):
        t0, t1 = t_range
        # Ring positions along the axis, uniform, with the nearest ring snapped onto each joint.
        ts = np.linspace(t0, t1, n + 2)[1:-1]
        for jt in joint_ts:
            ts[np.argmin(np.abs(ts - jt))] = jt
        assert np.all(np.diff(ts) > 0), "joint rings collide"
        r1 = np.interp(ts, profile[:, 0], profile[:, 1])
        r2 = np.interp(ts, profile[:, 0], profile[:, 2])
        phi = 2 * np.pi * np.arange(m) / m
        origin, axis, e1, e2 = (np.asarray(a, np.float64) for a in (origin, axis, e1, e2))
        centres = origin + ts[:, None] * axis
        rings = (
            centres[:, None]
            + (r1[:, None] * np.cos(phi))[..., None] * e1
            + (r2[:, None] * np.sin(phi))[..., None] * e2
        )
        self.m, self.n, self.ts = m, n, ts
        self.vertices = np.concatenate(
            [rings.reshape(-1, 3), (origin + t0 * axis)[None], (origin + t1 * axis)[None]]
        )
        self.centres = np.concatenate([np.repeat(centres, m, 0), self.vertices[-2:]])
        self.param = np.concatenate([np.repeat(ts, m), [t0, t1]])
        faces = []
        idx = np.arange(n * m).reshape(n, m)
        k1 = np.roll(np.arange(m), -1)
        for i in range(n - 1):
            a, b, c, d = idx[i], idx[i, k1], idx[i + 1, k1], idx[i + 1]
            faces += [np.stack([a, b, c], 1), np.stack([a, c, d], 1)]
        p0, p1 = n * m, n * m + 1
        faces.append(np.stack([np.full(m, p0), idx[0, k1], idx[0]], 1))
        faces.append(np.stack([np.full(m, p1), idx[-1], idx[-1, k1]], 1))
        self.faces = np.concatenate(faces).astype(np.int64)
        # Orient outwards: positive signed volume.
        if _signed_volume(self.vertices, self.faces) < 0:
            self.faces = self.faces[:, ::-1].copy()

    def ring(self, t: float) -> np.ndarray:
        i = int(np.argmin(np.abs(self.ts - t)))
        assert abs(self.ts[i] - t) < 1e-9, (t, self.ts[i])
        return np.arange(i * self.m, (i + 1) * self.m)

    def hidden_faces(self) -> np.ndarray:
        """Four faces inside the first ring (a double-sided cross), hidden in the parent."""
        r = np.arange(self.m)
        q = self.m // 4
        tri = np.array([[r[0], r[q], r[2 * q]], [r[0], r[2 * q], r[3 * q]]])
        return np.concatenate([tri, tri[:, ::-1]])


def _signed_volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return np.sum(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6.0


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _chain_weights(param, joint_ts, joints, half_width) -> dict[int, np.ndarray]:
    """Skinning along a chain: joint i owns [t_i, t_{i+1}], blended smoothly across each t_i."""
    out = {}
    for i, j in enumerate(joints):
        lo = 1.0 if i == 0 else _smoothstep((param - joint_ts[i] + half_width) / (2 * half_width))
        if i + 1 < len(joints):
            t = joint_ts[i + 1]
            hi = _smoothstep((param - t + half_width) / (2 * half_width))
        else:
            hi = 0.0
        out[j] = out.get(j, 0.0) + lo - hi
    return out


_JIDX = {n: i for i, n in enumerate(joint_sets.SMPL_JOINT_NAMES)}
_MIRROR = np.array([-1.0, 1.0, 1.0])
_TRUNK_JOINTS = ("pelvis", "spine1", "spine2", "spine3", "neck", "head")
_ARM_JOINTS = ("left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_hand")
_LEG_JOINTS = ("left_hip", "left_knee", "left_ankle")
_LEG_TS = (0.33, 0.72, 1.11)  # hip, knee, ankle along the leg axis (about -y)
# The leg axis runs down through the hip, slightly outwards towards the ankle.
_LEG_AXIS = np.array([0.015 / 0.78, -1.0, 0.0])
_LEG_ORIGIN = np.array(_J["left_hip"]) - 0.33 * _LEG_AXIS
# Mesh parts in vertex order: (name, tube, mirrored to the right side).
_PARTS = (("trunk", "trunk", False), ("larm", "arm", False), ("rarm", "arm", True),
          ("lleg", "leg", False), ("rleg", "leg", True), ("lfoot", "foot", False),
          ("rfoot", "foot", True))  # fmt: skip


def _tubes() -> dict[str, _Tube]:
    """The four tube shapes (left side); the right limbs are their mirror images."""
    ex, ey, ez = np.eye(3)
    trunk = _Tube((0, 0, 0), ey, ex, ez, _TRUNK_RANGE, _TRUNK_PROFILE, *_TRUNK,
                  [_J[n][1] for n in _TRUNK_JOINTS] + [0.20, -0.33, 0.44])  # fmt: skip
    arm = _Tube((0, 0.20, 0), ex, ey, ez, _ARM_RANGE, _ARM_PROFILE, *_ARM,
                [_J[n][0] for n in _ARM_JOINTS])  # fmt: skip
    leg = _Tube(_LEG_ORIGIN, _LEG_AXIS, ex, ez, _LEG_RANGE, _LEG_PROFILE, *_LEG,
                list(_LEG_TS))  # fmt: skip
    foot = _Tube((0.10, _FOOT_Y, 0.0), ez, ex, ey, _FOOT_RANGE, _FOOT_PROFILE, *_FOOT,
                 [0.0, 0.11])  # fmt: skip
    return {"trunk": trunk, "arm": arm, "leg": leg, "foot": foot}


@dataclasses.dataclass(frozen=True)
class _Mesh:
    """The assembled tubes: part -> (tube, first vertex index), and the whole mesh's arrays."""

    tubes: dict[str, _Tube]  # by part name
    offsets: dict[str, int]  # by part name
    v_template: np.ndarray  # [v 3]
    centre: np.ndarray  # [v 3] each vertex's point on its tube's centre line
    faces: np.ndarray  # [f 3]
    sym: np.ndarray  # [v] mirror vertex

    def rows(self, part: str) -> slice:
        return slice(self.offsets[part], self.offsets[part] + len(self.tubes[part].vertices))

    def ring(self, part: str, t: float) -> np.ndarray:
        return self.tubes[part].ring(t) + self.offsets[part]


def _assemble(shapes: dict[str, _Tube]) -> _Mesh:
    tubes, offsets, verts, faces, centres = {}, {}, [], [], []
    start = 0
    for name, shape, mirrored in _PARTS:
        tube = shapes[shape]
        tubes[name], offsets[name] = tube, start
        verts.append(tube.vertices * _MIRROR if mirrored else tube.vertices)
        centres.append(tube.centres * _MIRROR if mirrored else tube.centres)
        f = tube.faces[:, ::-1] if mirrored else tube.faces
        extra = [] if name == "trunk" else [tube.hidden_faces()]
        faces.append(np.concatenate([f, *extra]) + start)
        start += len(tube.vertices)
    v_template, f = np.concatenate(verts), np.concatenate(faces)
    assert len(v_template) == NUM_VERTICES and len(f) == NUM_FACES, (len(v_template), len(f))
    # Mirror correspondence: limbs map to their twin; trunk ring index k -> (m/2 - k) mod m.
    sym = np.arange(len(v_template))
    for a, b in (("larm", "rarm"), ("lleg", "rleg"), ("lfoot", "rfoot")):
        n_t = len(tubes[a].vertices)
        sym[offsets[a] : offsets[a] + n_t] = np.arange(n_t) + offsets[b]
        sym[offsets[b] : offsets[b] + n_t] = np.arange(n_t) + offsets[a]
    m, n = _TRUNK
    ring_sym = (m // 2 - np.arange(m)) % m
    sym[: n * m] = (np.arange(n)[:, None] * m + ring_sym[None]).reshape(-1)
    return _Mesh(tubes, offsets, v_template, np.concatenate(centres), f, sym)


def _skinning_weights(mesh: _Mesh) -> np.ndarray:
    """[v 24]: smooth blends along each chain, hips/collars on the trunk sides, normalised."""
    w = np.zeros((len(mesh.v_template), 24))

    def add(part, weights_by_joint, mirrored_names=False):
        for j, wj in weights_by_joint.items():
            jj = _JIDX[j]
            if mirrored_names:
                jj = joint_sets.SMPL_JOINTS_FLIP_PERM[jj]
            w[mesh.rows(part), jj] += wj

    trunk, arm, leg, foot = (mesh.tubes[p] for p in ("trunk", "larm", "lleg", "lfoot"))
    add("trunk", _chain_weights(trunk.param, [_J[n][1] for n in _TRUNK_JOINTS], _TRUNK_JOINTS,
                                0.04))  # fmt: skip
    # Lower trunk sides follow the hips, upper trunk sides the collars (smooth in x and y).
    tv = mesh.v_template[mesh.rows("trunk")]
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        s = _smoothstep((sgn * tv[:, 0] - 0.04) / 0.10)
        hip = s * _smoothstep((-0.25 - tv[:, 1]) / 0.12) * 0.8
        col = s * _smoothstep((tv[:, 1] - 0.10) / 0.08) * _smoothstep((0.26 - tv[:, 1]) / 0.03)
        for jn, amount in ((f"{side}_hip", hip), (f"{side}_collar", 0.7 * col)):
            w[: len(tv)] *= (1.0 - amount)[:, None]
            w[: len(tv), _JIDX[jn]] += amount
    aw = _chain_weights(arm.param, [_J[n][0] for n in _ARM_JOINTS], _ARM_JOINTS, 0.03)
    add("larm", aw)
    add("rarm", aw, mirrored_names=True)
    lw = _chain_weights(leg.param, list(_LEG_TS), _LEG_JOINTS, 0.04)
    # The top of the leg tube sits inside the pelvis: hand it to the pelvis joint.
    top = _smoothstep((0.30 - leg.param) / 0.06)
    lw = {k: v * (1 - top) for k, v in lw.items()}
    lw["pelvis"] = top
    add("lleg", lw)
    add("rleg", lw, mirrored_names=True)
    fw = _chain_weights(foot.param, [0.0, 0.11], ["left_ankle", "left_foot"], 0.025)
    add("lfoot", fw)
    add("rfoot", fw, mirrored_names=True)
    w = np.clip(w, 0.0, None)
    return w / w.sum(1, keepdims=True)


def _ring_row(mesh: _Mesh, part: str, t: float) -> np.ndarray:
    """A regressor row: the uniform mean of the ring at ``t`` of ``part``."""
    r = mesh.ring(part, t)
    row = np.zeros(len(mesh.v_template))
    row[r] = 1.0 / len(r)
    return row


def _joint_regressor(mesh: _Mesh) -> np.ndarray:
    """[24 v]: each joint is the mean of its ring (the right side mirrors the left)."""
    jreg = np.zeros((24, len(mesh.v_template)))
    for n in _TRUNK_JOINTS:
        jreg[_JIDX[n]] = _ring_row(mesh, "trunk", _J[n][1])
    for n in _ARM_JOINTS:
        jreg[_JIDX[n]] = _ring_row(mesh, "larm", _J[n][0])
    for n, t in zip(_LEG_JOINTS, _LEG_TS, strict=True):
        jreg[_JIDX[n]] = _ring_row(mesh, "lleg", t)
    jreg[_JIDX["left_foot"]] = _ring_row(mesh, "lfoot", 0.11)
    for n in joint_sets.SMPL_JOINT_NAMES:
        if n.startswith("right_"):
            jreg[_JIDX[n]] = jreg[_JIDX["left_" + n[6:]]][mesh.sym]
    return jreg


def _h36m_regressor(mesh: _Mesh, jreg: np.ndarray) -> np.ndarray:
    """[17 v], rows named in joint_sets.H36M_JOINT_NAMES."""
    h36m = np.zeros((17, len(mesh.v_template)))
    hidx = {n: i for i, n in enumerate(joint_sets.H36M_JOINT_NAMES)}
    for hn in ("pelvis", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow",
               "left_wrist"):  # fmt: skip
        h36m[hidx[hn]] = jreg[_JIDX[hn]]
    h36m[hidx["spine"]] = 0.5 * (jreg[_JIDX["spine1"]] + jreg[_JIDX["spine2"]])
    h36m[hidx["thorax"]] = _ring_row(mesh, "trunk", 0.20)
    # Nose: front of the head ring (max z); head top: the ring at 0.44 and the top pole.
    trunk = mesh.tubes["trunk"]
    head_ring = trunk.ring(0.44)
    h36m[hidx["head_top"], head_ring] = 0.5 / len(head_ring)
    h36m[hidx["head_top"], len(trunk.vertices) - 1] = 0.5
    face_ring = trunk.ring(_J["head"][1])
    front = face_ring[np.argsort(-mesh.v_template[face_ring, 2])[:3]]
    h36m[hidx["neck_nose"], front] = 1.0 / 3
    for hn in joint_sets.H36M_JOINT_NAMES:
        if hn.startswith("right_"):
            h36m[hidx[hn]] = h36m[hidx["left_" + hn[6:]]][mesh.sym]
    h36m[hidx["neck_nose"]] = 0.5 * (h36m[hidx["neck_nose"]] + h36m[hidx["neck_nose"]][mesh.sym])
    return h36m


@functools.lru_cache(maxsize=8)
def _build_arrays(seed: int) -> dict[str, np.ndarray]:
    mesh = _assemble(_tubes())
    w = _skinning_weights(mesh)
    jreg = _joint_regressor(mesh)
    # Rings exactly reproduce the centre lines, hence the joints (the ankle on the leg line vs
    # the foot line differ by design: the rings decide).
    joints = jreg @ mesh.v_template
    rng = np.random.default_rng(seed)
    shapedirs = _shape_directions(mesh.v_template, mesh.centre, joints, _JIDX, mesh.offsets, rng)
    posedirs = _pose_directions(mesh.v_template, mesh.centre, w, rng)
    arrays = dict(
        v_template=mesh.v_template, shapedirs=shapedirs, posedirs=posedirs, J_regressor=jreg,
        weights=w, faces=mesh.faces.astype(np.int32), h36m_regressor=_h36m_regressor(mesh, jreg),
        sym_idx=mesh.sym,
    )  # fmt: skip
    return _symmetrize(arrays)


def _shape_directions(v, centre, joints, jidx, offsets, rng) -> np.ndarray:
    """Ten smooth, mirror-symmetric shape directions (metres per unit beta)."""
    y, x = v[:, 1], v[:, 0]
    radial = v - centre  # out of the centre line in the cross-section plane
    pelvis_y = joints[jidx["pelvis"], 1]
    trunk_n = offsets["larm"]
    is_trunk = np.arange(len(v)) < trunk_n
    is_arm = (np.arange(len(v)) >= offsets["larm"]) & (np.arange(len(v)) < offsets["lleg"])
    is_leg = np.arange(len(v)) >= offsets["lleg"]
    sd = np.zeros((len(v), 3, 10))
    sd[:, 1, 0] = 0.045 * (y - pelvis_y)  # 0 height (uniform scale in y about the pelvis)
    sd[:, 0, 0] = 0.01 * x
    sd[:, :, 1] = 0.12 * radial  # 1 girth: every cross-section grows
    leg_y = np.where(is_leg, np.minimum(y - (-0.33), 0.0), 0.0)
    sd[:, 1, 2] = 0.06 * leg_y  # 2 leg length (feet follow)
    sd[:, 0, 3] = 0.06 * np.where(is_arm, np.sign(x) * np.maximum(np.abs(x) - 0.18, 0.0), 0.0)
    sh = _smoothstep((y - 0.05) / 0.12) * _smoothstep((0.26 - y) / 0.03)  # 4 shoulder width
    sd[:, 0, 4] = 0.02 * np.sign(x) * np.where(is_arm, 1.0, sh * _smoothstep(np.abs(x) / 0.12))
    hip = _smoothstep((-0.05 - y) / 0.15) * is_trunk  # 5 hip width
    sd[:, 0, 5] = 0.03 * x / 0.17 * hip
    sd[:, 0, 5] += np.where(is_leg, 0.02 * np.sign(x), 0.0)
    belly = np.exp(-(((y + 0.08) / 0.12) ** 2)) * is_trunk * np.clip(radial[:, 2] / 0.1, 0, None)
    sd[:, 2, 6] = 0.04 * belly  # 6 belly
    head = _smoothstep((y - 0.28) / 0.04) * is_trunk  # 7 head size
    sd[:, :, 7] = 0.15 * head[:, None] * (v - np.array([0.0, 0.40, 0.0]))
    sd[:, 1, 7] += 0.02 * head
    torso = np.clip((y - pelvis_y) / (0.27 - pelvis_y), 0.0, 1.0) * (~is_leg)  # 8 torso length
    sd[:, 1, 8] = 0.04 * np.where(y > 0.27, 1.0, torso) * (~is_leg)
    chest = np.exp(-(((y - 0.12) / 0.1) ** 2)) * is_trunk  # 9 chest depth + limb muscle
    sd[:, 2, 9] = 0.03 * chest * np.clip(radial[:, 2] / 0.1, -0.3, None)
    sd[:, :, 9] += 0.05 * radial * (is_arm | is_leg)[:, None]
    # A small seeded mix keeps the directions from being axis-aligned across seeds.
    mix = np.eye(10) + 0.05 * rng.standard_normal((10, 10))
    return sd @ mix


def _pose_directions(v, centre, w, rng) -> np.ndarray:
    """Pose correctives [207 v*3]: small bulges along the surface normal near each joint.

    Feature (j, a, b) = (R_j - I)_ab moves the vertices where joint j blends with its neighbours
    (w (1 - w) is largest at the joint) along the outward radial direction.
    """
    radial = v - centre
    rn = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-6)
    mask = w[:, 1:] * (1.0 - w[:, 1:])  # [v 23]
    coef = 0.02 * rng.standard_normal((23, 9))
    pd = mask[:, :, None, None] * coef[None, :, :, None] * rn[:, None, None, :]  # [v 23 9 3]
    return pd.transpose(1, 2, 0, 3).reshape(207, -1)


def _symmetrize(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Make every array exactly mirror-symmetric under (sym_idx, SMPL flip perm, M=diag(-1,1,1))."""
    sym = a["sym_idx"]
    perm = np.array(joint_sets.SMPL_JOINTS_FLIP_PERM)
    s = np.array([-1.0, 1.0, 1.0])
    out = dict(a)
    out["v_template"] = 0.5 * (a["v_template"] + a["v_template"][sym] * s)
    out["shapedirs"] = 0.5 * (a["shapedirs"] + a["shapedirs"][sym] * s[:, None])
    out["weights"] = 0.5 * (a["weights"] + a["weights"][sym][:, perm])
    out["J_regressor"] = 0.5 * (a["J_regressor"] + a["J_regressor"][perm][:, sym])
    h_perm = np.array(joint_sets.H36M_FLIP_PERM)
    out["h36m_regressor"] = 0.5 * (a["h36m_regressor"] + a["h36m_regressor"][h_perm][:, sym])
    # posedirs: P[perm(j), ab, sym(v)] = s_a s_b M P[j, ab, v] (flip: R' = M R M).
    p = a["posedirs"].reshape(23, 3, 3, -1, 3)
    body_perm = perm[1:] - 1
    t = p[body_perm][:, :, :, sym] * (s[:, None] * s[None, :])[None, :, :, None, None] * s
    out["posedirs"] = (0.5 * (p + t)).reshape(207, -1)
    return out


def procedural_model_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The procedural model's numpy arrays (BodyModel layout), cached per seed."""
    return {k: v.copy() for k, v in _build_arrays(int(seed)).items()}


@functools.lru_cache(maxsize=8)
def make_procedural_body_model(seed: int = 0) -> BodyModel:
    """The SMPL-compatible procedural body model (float32), deterministic for `seed`."""
    return body_model_from_arrays(_build_arrays(int(seed)), source=f"procedural(seed={seed})")


__all__ = ["NUM_FACES", "NUM_VERTICES", "make_procedural_body_model", "procedural_model_arrays"]
