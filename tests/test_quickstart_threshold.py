"""The detection threshold chosen on validation travels with the checkpoint: the quickstart stores
it in the checkpoint's meta, and the model the demo's predictor runs applies it unless the config
sets ``model.center.threshold`` (tiny config, untrained weights)."""

import importlib

import jax
import numpy as np
import pytest
from flax import nnx

from siam_jax import checkpoints


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from siam_jax import models
    from siam_jax.training import state as state_lib

    config = importlib.import_module("configs.tiny").get_config()
    assert config.model.center.threshold is None  # unset: the checkpoint's threshold applies
    workdir = tmp_path_factory.mktemp("run")
    body = models.load_body_model(config.model)
    model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
    _, state = state_lib.create_train_state(model, state_lib.make_optimizer(config))
    with checkpoints.Checkpointer(str(workdir / "checkpoints"), async_save=False) as ckpt:
        ckpt.save(3, state, None)  # no meta item at all
        ckpt.save(7, state, None, meta={checkpoints.META_TRAIN_DATASETS: ["siam_synthetic"]})
    return config, workdir, body


def _frame():
    return np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def _predict(config, workdir, body, step):
    from siam_jax.inference.predictor import Predictor

    model, _ = checkpoints.restore_model(config, str(workdir), step, body_model=body)
    return model, Predictor(model, config)([_frame()])[0]


def test_stored_threshold_is_what_the_demo_predictor_applies(tiny_run):
    from siam_jax.training import quickstart

    config, workdir, body = tiny_run
    # Every peak, whatever its score (a user's override), to place a threshold between them.
    everyone = config.copy_and_resolve_references()
    everyone.model.center.threshold = -1.0
    _, all_peaks = _predict(everyone, workdir, body, 7)
    scores = np.sort(all_peaks.scores)[::-1]
    assert len(scores) >= 2 and scores[0] > scores[1]
    stored = float((scores[0] + scores[1]) / 2)  # exactly one peak above it

    quickstart.store_threshold(str(workdir), 7, stored)
    model, pred = _predict(config, workdir, body, 7)
    assert model.threshold == pytest.approx(stored)
    assert len(pred.scores) == 1 and pred.scores[0] == pytest.approx(scores[0])
    quickstart.store_threshold(str(workdir), 3, 0.5)  # a checkpoint written without meta
    restored, _ = checkpoints.restore_model(config, str(workdir), 3, body_model=body)
    assert restored.threshold == 0.5
    with checkpoints.Checkpointer(str(workdir / "checkpoints"), create=False) as ckpt:
        meta = ckpt.read_meta(7)  # the other keys are kept
    assert meta == {"train_datasets": ["siam_synthetic"], "center_threshold": pytest.approx(stored)}

    # The user's --config.model.center.threshold wins over the stored one.
    override = config.copy_and_resolve_references()
    override.model.center.threshold = -1.0
    model, _ = checkpoints.restore_model(override, str(workdir), 7, body_model=body)
    assert model.threshold == -1.0
    with pytest.raises(FileNotFoundError, match="no checkpoint at step 5"):
        quickstart.store_threshold(str(workdir), 5, 0.5)


def test_detection_report_stores_its_best_threshold(tiny_run):
    """The quickstart's sweep on hand-made validation frames (one with a person, one without):
    the threshold it reports is the one stored and then applied."""
    from siam_jax.evaluation import detection
    from siam_jax.training import quickstart

    config, workdir, body = tiny_run
    k = config.model.max_instances
    rng = np.random.default_rng(1)
    joints = np.zeros((2, 1, k, 24, 2), np.float32)
    joints[0, 0, 0] = np.stack([np.linspace(10, 40, 24), np.linspace(5, 60, 24)], 1)
    person_valid = np.zeros((2, 1, k), bool)
    person_valid[0, 0, 0] = True
    batch = {
        "image": rng.random((2, 1, 64, 64, 3)).astype(np.float32),
        "intrinsics": np.tile(np.array([[60.0, 0, 31.5], [0, 60, 31.5], [0, 0, 1]]), (2, 1, 1, 1)),
        "batch_valid": np.array([True, True]),
        "person_valid": person_valid,
        "joints_2d": joints,
        "occlusion": np.zeros((2, 1, k), np.float32),
    }
    batch["intrinsics"] = batch["intrinsics"].astype(np.float32)
    model, _ = checkpoints.restore_model(config, str(workdir), 7, body_model=body)
    frames = quickstart.detection_frames(model, [batch])
    assert (
        len(frames) == 2 and len(frames[0].gt_joints_2d) == 1 and len(frames[1].gt_joints_2d) == 0
    )
    assert 1 <= len(frames[1].scores) <= k  # every peak is a candidate
    best = quickstart.detection_report(config, str(workdir), body, [batch], 7)
    noise_rate = best.pop("false_detections_per_noise_frame")
    assert best == detection.sweep_thresholds(frames)[0]
    assert 0.0 <= noise_rate <= k
    with checkpoints.Checkpointer(str(workdir / "checkpoints"), create=False) as ckpt:
        assert ckpt.read_meta(7)[checkpoints.META_CENTER_THRESHOLD] == best["threshold"]
    assert jax.device_get(
        checkpoints.restore_model(config, str(workdir), 7, body_model=body)[0].threshold
    ) == pytest.approx(best["threshold"])


def test_noise_false_detections_counts_the_peaks_above_the_threshold(tiny_run):
    """The pure-noise probe of the quickstart report: its rate is the mean number of top-k
    centre peaks scoring above the threshold, counted here on the host from every peak."""
    from siam_jax.evaluation.forward import make_forward
    from siam_jax.models.camera import default_intrinsics
    from siam_jax.training import quickstart

    config, workdir, body = tiny_run
    images = quickstart.noise_images(64, num_frames=6)
    assert images.shape == (6, 1, 64, 64, 3) and 0.0 <= images.min() and images.max() <= 1.0
    flat = images.reshape(-1, 3)
    assert abs(flat.mean() - 0.5) < 0.01 and abs(flat.std() - 1 / np.sqrt(12)) < 0.01  # U(0, 1)
    # no spatial correlation: neighbouring pixels are independent
    assert abs(np.corrcoef(images[..., :-1, :].ravel(), images[..., 1:, :].ravel())[0, 1]) < 0.02

    model, _ = checkpoints.restore_model(config, str(workdir), 7, body_model=body)
    model.threshold = float("-inf")
    intr = np.broadcast_to(np.asarray(default_intrinsics(64, model.fov_degrees)), (6, 1, 3, 3))
    out = jax.device_get(make_forward(model)(images, intr))
    scores = np.asarray(out["scores"])[np.asarray(out["valid"], bool)]
    assert scores.size > 0
    for threshold in (float("-inf"), float(np.median(scores)), float("inf")):
        expected = float((scores > threshold).sum() / 6)
        got = quickstart.noise_false_detections(model, threshold, images)
        assert got == pytest.approx(expected), threshold
