"""End to end: demo on videos, a folder of images and single images, from a checkpoint the
training code wrote. The checkpoint holds an untrained tiny model, so the centre threshold is
lowered to make every slot a detection: this exercises the camera, rendering, tracking,
smoothing, the writers and the BVH export, not accuracy."""

import importlib
import math

import jax
import numpy as np
import pytest
from flax import nnx

from siam_jax.common import prediction_file
from siam_jax.inference import media
from siam_jax.inference.demo import DemoOptions, run_demo
from siam_jax.inference.intrinsics import camera_from_flags


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from siam_jax import checkpoints, models
    from siam_jax.training import state as state_lib

    config = importlib.import_module("configs.tiny").get_config()
    config.model.center.threshold = -1.0  # every slot counts as a person
    workdir = tmp_path_factory.mktemp("run")
    body = models.load_body_model(config.model)
    model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
    _, state = state_lib.create_train_state(model, state_lib.make_optimizer(config))
    ckpt = checkpoints.Checkpointer(str(workdir / "checkpoints"), keep=1, async_save=False)
    ckpt.save(7, state, None)
    ckpt.close()
    yield config, workdir
    jax.clear_caches()


def _write_video(path, n=3, h=72, w=96):
    yy, xx = np.mgrid[0:h, 0:w]
    with media.VideoWriter(path, fps=10) as writer:
        for i in range(n):
            f = np.stack([xx * 2, yy * 3, np.full_like(xx, 80 + 10 * i)], -1).astype(np.uint8)
            writer.write(f)


def _project(points, k):
    """Pinhole projection written out here: u = fx X / Z + cx, v = fy Y / Z + cy."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([k[0, 0] * x / z + k[0, 2], k[1, 1] * y / z + k[1, 2]], -1)


def _check_file(path, hw):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for key in (*prediction_file.PERSON_KEYS, *prediction_file.FRAME_KEYS):
        assert key in arrays, key
    n = len(arrays["score"])
    assert arrays["global_orient"].shape == (n, 3) and arrays["body_pose"].shape == (n, 69)
    assert arrays["betas"].shape == (n, 10) and arrays["transl"].shape == (n, 3)
    assert arrays["joints_3d"].shape == (n, 24, 3) and arrays["joints_2d"].shape == (n, 24, 2)
    assert str(arrays["joint_set"]) == "smpl24" and int(arrays["schema_version"]) == 1
    assert tuple(arrays["image_size"]) == hw
    np.testing.assert_allclose(
        _project(arrays["joints_3d"].astype(np.float64), arrays["intrinsics"]),
        arrays["joints_2d"], atol=2e-2, rtol=1e-4,
    )  # fmt: skip
    return arrays


def _parse_bvh_header(text):
    lines = text.splitlines()
    joints = [ln.split()[1] for ln in lines if ln.strip().split()[0] in ("ROOT", "JOINT")]
    frames = int(next(ln for ln in lines if ln.startswith("Frames:")).split()[1])
    frame_time = float(next(ln for ln in lines if ln.startswith("Frame Time:")).split()[2])
    motion = lines[lines.index("MOTION") + 3 :]
    return joints, frames, frame_time, motion


def test_demo_on_videos_with_every_option_and_resume(tiny_checkpoint, tmp_path):
    config, workdir = tiny_checkpoint
    videos = tmp_path / "videos"
    _write_video(videos / "clip.mp4")
    _write_video(videos / "other.mp4", n=2)
    out = tmp_path / "out"
    opts = DemoOptions(save_obj=True, smooth=True, export=("bvh",), side_view=True)
    summary = run_demo(config, str(workdir), str(videos), str(out), options=opts)
    assert summary["checkpoint_step"] == 7 and summary["skipped"] == []
    first_video = summary["inputs"][0]
    assert first_video["frames"] == 3 and summary["inputs"][1]["frames"] == 2
    for key in ("demo_fps", "model_fps", "first_frame_model_s"):
        assert key in first_video
    frames = sorted((out / "clip" / "params").glob("*.npz"))
    assert len(frames) == 3
    arrays = [_check_file(f, (72, 96)) for f in frames]
    n = len(arrays[0]["score"])  # heatmap peaks (3x3 local maxima) among the k slots
    assert 1 <= n <= config.model.max_instances
    # Nearly the same frame content -> the same people -> the tracker keeps their IDs.
    assert [set(a["track_id"].tolist()) for a in arrays] == [set(arrays[0]["track_id"])] * 3
    overlay = media.open_source(out / "clip" / "clip_overlay.mp4")
    decoded = [f.image for f in media.iter_frames(overlay)]
    assert len(decoded) == 3 and decoded[0].shape == (72, 2 * 96, 3)  # overlay | side view
    assert len(list((out / "clip" / "meshes").glob("*.obj"))) == 3 * n
    bvh = sorted((out / "clip").glob("clip_track*.bvh"))
    assert len(bvh) == len(first_video["ids"])
    joints, count, frame_time, motion = _parse_bvh_header(bvh[0].read_text())
    assert len(joints) == 24 and joints[0] == "pelvis"
    assert count == 3 and len(motion) == 3 and abs(frame_time - 0.1) < 1e-6
    assert len(motion[0].split()) == 6 + 3 * 23
    # Rerun: both videos are finished, nothing is redone.
    again = run_demo(config, str(workdir), str(videos), str(out), options=opts)
    assert again["inputs"] == [] and len(again["skipped"]) == 2


def test_camera_flags_change_intrinsics_and_translations_consistently(tiny_checkpoint, tmp_path):
    from siam_jax.checkpoints import restore_model
    from siam_jax.inference import outputs
    from siam_jax.inference.predictor import Predictor

    config, workdir = tiny_checkpoint
    model, _ = restore_model(config, str(workdir))
    h, w = 40, 56  # not square: letterboxed into the network input
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx * 4, yy * 5, xx + yy], -1).astype(np.uint8)
    f60 = (w / 2) / math.tan(math.radians(30))  # documented default: 60 deg across the long side
    f40 = (w / 2) / math.tan(math.radians(20))
    c = ((w - 1) / 2, (h - 1) / 2)
    flags = {"default": (None, None), "fov40": (40.0, None),
             "explicit": (None, f"{2 * f60!r},{2 * f60!r},{c[0]},{c[1]}")}  # fmt: skip
    want_f = {"default": f60, "fov40": f40, "explicit": 2 * f60}
    got = {}
    for name, (fov, intr) in flags.items():
        camera = camera_from_flags(fov, intr, config.model.fov_degrees)
        pred = Predictor(model, config, camera)([image] * config.model.clip_len)[-1]
        outputs.write_frame(tmp_path / name, "im", pred, np.arange(len(pred.scores)),
                            frame_index=0)  # fmt: skip
        got[name] = _check_file(tmp_path / name / "params" / "im.npz", (h, w))
        want_k = [[want_f[name], 0, c[0]], [0, want_f[name], c[1]], [0, 0, 1]]
        np.testing.assert_allclose(got[name]["intrinsics"], want_k, rtol=1e-9, atol=1e-9)
    # The network sees the same pixels, so its camera (s, tx, ty) is the same; tz = 2 f / (s S)
    # scales with the focal length, and (Tx, Ty) = (tx, ty) + (u - c) tz / f does not change.
    base = got["default"]["transl"].astype(np.float64)
    for name in ("fov40", "explicit"):
        t = got[name]["transl"].astype(np.float64)
        np.testing.assert_allclose(t[:, 2], want_f[name] / f60 * base[:, 2], rtol=1e-4)
        np.testing.assert_allclose(t[:, :2], base[:, :2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        camera_from_flags(50.0, "1,1,1,1", 60.0)
    with pytest.raises(ValueError, match="four numbers"):
        camera_from_flags(None, "1,2,3", 60.0)


def test_demo_on_folder_and_errors(tiny_checkpoint, tmp_path):
    config, workdir = tiny_checkpoint
    images = tmp_path / "images"
    for i in range(2):
        media.write_image(images / f"im{i}.png", np.full((40, 50, 3), 60 * i, np.uint8))
    summary = run_demo(config, str(workdir), str(images), str(tmp_path / "o"))
    assert summary["frames"] == 2
    assert (tmp_path / "o" / "im1_overlay.png").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_demo(config, str(workdir), str(tmp_path / "nope.mp4"), str(tmp_path / "o2"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_demo(config, str(tmp_path), str(images), str(tmp_path / "o3"))
    with pytest.raises(ValueError, match="unknown export"):
        DemoOptions(export=("fbx",))


def test_demo_writes_frames_where_nobody_is_found(tiny_checkpoint, tmp_path):
    """A threshold no centre score reaches: every frame has 0 people, and each still gets its
    overlay and a valid prediction file with 0 rows (the writer once failed to reshape the
    empty arrays). Every option that writes per-person output is on."""
    config, workdir = tiny_checkpoint
    config = config.copy_and_resolve_references()
    config.model.center.threshold = 2.0  # scores are sigmoids in (0, 1)
    images = tmp_path / "noise"
    rng = np.random.default_rng(0)
    for i in range(2):
        media.write_image(images / f"n{i}.png", rng.integers(0, 256, (40, 50, 3), np.uint8))
    opts = DemoOptions(save_obj=True, smooth=True, export=("bvh",), side_view=True)
    summary = run_demo(config, str(workdir), str(images), str(tmp_path / "o"), options=opts)
    assert summary["frames"] == 2 and summary["frames_without_people"] == ["n0", "n1"]
    for name in ("n0", "n1"):
        assert (tmp_path / "o" / f"{name}_overlay.png").exists()
        arrays = prediction_file.read(tmp_path / "o" / "params" / f"{name}.npz")
        assert arrays["score"].shape == (0,) and arrays["betas"].shape[0] == 0
        assert arrays["joints_3d"].shape == (0, 24, 3) and arrays["joints_2d"].shape == (0, 24, 2)
