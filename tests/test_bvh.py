"""The BVH export against an independent minimal BVH reader and forward kinematics: the first
frame reproduces the SMPL joints (siam_jax.body, procedural model) within 1 mm."""

import math

import numpy as np
import pytest

from siam_jax.body import make_procedural_body_model
from siam_jax.body.joint_sets import SMPL_JOINT_NAMES
from siam_jax.inference.bvh import BvhRecorder, bvh_text

# docs/demo.md: the BVH world is the camera frame turned y-up, W = diag(1, -1, -1) X_cam.
W = np.diag([1.0, -1.0, -1.0])


def _elementary(axis, degrees):
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def parse_bvh(text):
    """Joints (name, parent, offset, channels) in file order, frame count, frame time, motion."""
    tokens = text.split()
    joints, stack, i = [], [], 0
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            joints.append({"name": tokens[i + 1], "parent": stack[-1] if stack else -1})
            stack.append(len(joints) - 1)
            i += 2
        elif tok == "End":  # End Site { OFFSET x y z }: no channels, skipped
            i += 8
        elif tok == "OFFSET":
            joints[stack[-1]]["offset"] = np.array([float(t) for t in tokens[i + 1 : i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            joints[stack[-1]]["channels"] = tokens[i + 2 : i + 2 + n]
            i += 2 + n
        elif tok == "}":
            stack.pop()
            i += 1
        else:
            i += 1
    frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    values = np.array([float(t) for t in tokens[i + 6 :]]).reshape(frames, -1)
    return joints, frames, frame_time, values


def forward_kinematics(joints, row):
    """World joint positions of one motion row: p = R_parent offset + p_parent, R = R_parent
    Rot(channels in their order)."""
    pos, rot, k = [], [], 0
    for j in joints:
        local, t = np.eye(3), np.zeros(3)
        for ch in j["channels"]:
            v = row[k]
            k += 1
            if ch.endswith("position"):
                t["XYZ".index(ch[0])] = v
            else:
                local = local @ _elementary(ch[0], v)
        if j["parent"] < 0:
            pos.append(j["offset"] + t)
            rot.append(local)
        else:
            p = j["parent"]
            pos.append(rot[p] @ j["offset"] + pos[p])
            rot.append(rot[p] @ local)
    return np.stack(pos)


@pytest.fixture(scope="module")
def body():
    return make_procedural_body_model(0)


def test_first_frame_reproduces_smpl_joints(body, tmp_path):
    rng = np.random.default_rng(1)
    betas = rng.normal(scale=0.5, size=10).astype(np.float32)
    go = np.array([math.pi - 0.3, 0.2, 0.1])  # upright-ish person facing the camera
    pose = rng.normal(scale=0.4, size=(23, 3))
    transl = np.array([0.3, -0.2, 4.0])
    smpl = np.asarray(body(betas, pose.astype(np.float32), go.astype(np.float32),
                           transl.astype(np.float32)).joints[:24], np.float64)  # fmt: skip
    rest = np.asarray(body(betas, np.zeros((23, 3), np.float32),
                           np.zeros(3, np.float32)).joints[:24], np.float64)  # fmt: skip
    rec = BvhRecorder(lambda b: rest)
    # The track is seen in frames 1 and 3 of a 4-frame video: frame 0 holds frame 1's pose.
    rec.add(1, [5], go[None], pose[None], betas[None], transl[None])
    rec.add(3, [5], np.zeros((1, 3)), pose[None], betas[None], transl[None])
    (path,) = rec.write(tmp_path, "clip", fps=25.0, num_frames=4)
    joints, frames, frame_time, motion = parse_bvh(open(path).read())
    assert path.endswith("clip_track5.bvh")
    assert len(joints) == 24 and frames == 4 and abs(frame_time - 0.04) < 1e-7
    assert motion.shape == (4, 6 + 3 * 23)
    for frame in (0, 1):
        got = forward_kinematics(joints, motion[frame])
        order = [j["name"] for j in joints]
        want = (smpl @ W.T)[[SMPL_JOINT_NAMES.index(n) for n in order]]
        assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()
    assert not np.allclose(motion[2], motion[1])  # frame 2: nearest seen frame is 3 (tie -> 3)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="BVH needs"):
        bvh_text(np.zeros((23, 3)), np.zeros((1, 24, 3, 3)), np.zeros((1, 3)), 30.0)
    with pytest.raises(ValueError, match="fps"):
        bvh_text(np.zeros((24, 3)), np.tile(np.eye(3), (1, 24, 1, 1)), np.zeros((1, 3)), 0.0)
