"""End to end: demo on a video and on a folder of images, from a checkpoint the training code
wrote. The checkpoint holds an untrained tiny model, so the centre threshold is lowered to make
every slot a detection: this exercises rendering, tracking and the writers, not accuracy."""

import importlib

import jax
import numpy as np
import pytest
from flax import nnx

from siam_jax.inference import media


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
    return config, workdir


def _write_video(path, n=3, h=72, w=96):
    yy, xx = np.mgrid[0:h, 0:w]
    with media.VideoWriter(path, fps=10) as writer:
        for i in range(n):
            f = np.stack([xx * 2, yy * 3, np.full_like(xx, 80 + 10 * i)], -1).astype(np.uint8)
            writer.write(f)


def test_demo_on_video(tiny_checkpoint, tmp_path):
    from siam_jax.inference.demo import run_demo

    config, workdir = tiny_checkpoint
    video = tmp_path / "clip.mp4"
    _write_video(video)
    out = tmp_path / "out"
    summary = run_demo(config, str(workdir), str(video), str(out), save_obj=True)
    assert summary["checkpoint_step"] == 7 and summary["frames"] == 3
    frames = sorted((out / "params").glob("*.npz"))
    assert len(frames) == 3
    first = np.load(frames[0])
    n = len(first["ids"])  # heatmap peaks (3x3 local maxima) among the k slots
    assert 1 <= n <= config.model.max_instances
    assert first["body_pose"].shape == (n, 23, 3) and first["cam_t"].shape == (n, 3)
    assert first["keypoints_2d"].shape == (n, 24, 2)
    assert np.all(np.isfinite(first["cam_t"]))
    # Nearly the same frame content -> the same people -> the tracker keeps their IDs.
    ids = [set(np.load(f)["ids"].tolist()) for f in frames]
    assert ids[0] == ids[1] == ids[2]
    decoded = [f.image for f in media.iter_frames(media.open_source(out / "clip_overlay.mp4"))]
    assert len(decoded) == 3 and decoded[0].shape == (72, 96, 3)
    assert len(list((out / "meshes").glob("*.obj"))) == 3 * n


def test_demo_on_folder_and_errors(tiny_checkpoint, tmp_path):
    from siam_jax.inference.demo import run_demo

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
    jax.clear_caches()
