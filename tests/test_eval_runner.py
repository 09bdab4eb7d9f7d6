"""eval.py / siam_jax.evaluation.runner end to end on tiny datasets, and the matching + metric path
fed with ground-truth-derived predictions (zero error, F1 1) instead of the network."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from siam_jax import checkpoints
from siam_jax.evaluation import evaluators, runner
from siam_jax.evaluation import frames as frames_lib
from siam_jax.evaluation.gt_meshes import GtMeshes
from siam_jax.evaluation.predictions import Prediction
from tests import fixtures_official as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir: str, body_dir: str = ""):
    from configs import tiny

    c = tiny.get_config()
    c.data.data_dir = data_dir
    c.data.read_threads = 1
    c.data.real.body_model_dir = body_dir
    c.data.eval_dataset = "siam_synthetic:tiny"
    # An untrained network: every top-k peak counts as a detection, so all paths get predictions.
    c.model.center.threshold = 0.0
    return c


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A checkpoint of an initialised tiny SIAM (a TrainState, as training writes it)."""
    import jax
    from flax import nnx

    from siam_jax import models
    from siam_jax.training import state as state_lib

    config = _config("")
    body = models.load_body_model(config.model)  # outside the trace: get_body_model caches it
    graph = {}

    def init():
        model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
        graph["defs"], st = state_lib.create_train_state(model, state_lib.make_optimizer(config))
        return st

    state = jax.jit(init)()
    work = tmp_path_factory.mktemp("work")
    ck = checkpoints.Checkpointer(str(work / "checkpoints"), keep=2, async_save=False)
    ck.save(3, state, None)
    ck.close()
    return str(work)


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    """pw3d/full, agora/1280x720 and cmu_panoptic built from the official-format fixtures."""
    from siam_jax.data.builders import agora, cmu_panoptic, pw3d

    root = tmp_path_factory.mktemp("real")
    data_dir, bm = str(root / "tfds"), str(root / "body")
    models = fx.write_body_models(bm)
    for name, write, build in (
        ("pw3d", lambda m: fx.write_pw3d(m, models), lambda: pw3d.Pw3d(
            data_dir=data_dir, body_model_dir=bm, config="full")),
        ("agora", lambda m: fx.write_agora(m, models["neutral"]), lambda: agora.Agora(
            data_dir=data_dir, body_model_dir=bm, config="1280x720")),
        ("panoptic", lambda m: fx.write_panoptic(m), lambda: cmu_panoptic.CmuPanoptic(
            data_dir=data_dir)),
    ):  # fmt: skip
        manual = str(root / f"manual_{name}")
        write(manual)
        build().download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual)
        )
    return data_dir, bm


def _check_report(path: str, dataset: str, protocol: str, metric_keys) -> dict:
    with open(path) as f:
        rep = json.load(f)
    for key in ("dataset", "split", "protocol", "checkpoint_step", "num_images", "num_persons"):
        assert key in rep, key
    assert rep["dataset"] == dataset and rep["protocol"] == protocol
    assert rep["checkpoint_step"] == 3 and rep["num_images"] > 0 and rep["units"] == "mm"
    for key in metric_keys:
        assert key in rep["metrics"], key
    return rep


def test_missing_checkpoint_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: holds no checkpoint"):
        checkpoints.restore_model(_config(""), str(tmp_path))


def test_eval_py_on_tiny_synthetic_split(workdir, tmp_path):
    """The absl entry point in a subprocess: restore, jitted model, JSON with finite numbers."""
    from siam_jax.data.builders.siam_synthetic import SiamSynthetic

    data_dir = str(tmp_path / "data")
    SiamSynthetic(
        config="tiny", data_dir=data_dir, file_format="array_record"
    ).download_and_prepare()
    cmd = [sys.executable, "eval.py", "--config", "configs/tiny.py", "--workdir", workdir,
           "--dataset", "siam_synthetic", "--max_examples", "4",
           f"--config.data.data_dir={data_dir}", "--config.data.eval_dataset=siam_synthetic:tiny",
           "--config.model.center.threshold=0.0", "--config.data.read_threads=1"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = _check_report(
        os.path.join(workdir, "eval", "siam_synthetic_validation.json"),
        "siam_synthetic",
        "pelvis_aligned_nearest_centre",
        ("MPJPE", "PA-MPJPE", "PVE", "num_unmatched"),
    )
    assert rep["num_images"] == 4 and rep["num_persons"] > 0
    for key in ("MPJPE", "PA-MPJPE", "PVE"):
        assert math.isfinite(rep["metrics"][key]) and rep["metrics"][key] > 0
    assert "pelvis_aligned_nearest_centre" in proc.stdout


@pytest.mark.parametrize("protocol", ["romp_vibe", "spin"])
def test_pw3d_fixture_end_to_end(workdir, real_data, protocol):
    data_dir, bm = real_data
    rep = runner.evaluate(_config(data_dir, bm), workdir, "pw3d", protocol=protocol, progress=False)
    rep = _check_report(rep["path"], "pw3d", protocol, ("MPJPE", "PA-MPJPE", "PVE"))
    assert rep["split"] == "test" and rep["num_images"] == 3
    # 2 actors over 3 frames, one with campose_valid 0 at frame 1: 5 evaluable people.
    assert rep["num_persons"] + rep["metrics"]["num_unmatched"] == 5
    assert "no poster row" in rep["poster_comparison"]  # width 4: not in Table 1


def test_agora_fixture_end_to_end_with_export(workdir, real_data, tmp_path):
    data_dir, bm = real_data
    export = str(tmp_path / "pred")
    rep = runner.evaluate(
        _config(data_dir, bm), workdir, "agora", split="train", export_agora=export,
        progress=False,
    )  # fmt: skip
    keys = ("precision", "recall", "f1", "body-MPJPE", "body-MVE", "body-NMJE", "body-NMVE")
    rep = _check_report(rep["path"], "agora", "agora_official", keys)
    # GT people counted by the official evaluator: isValid ones (the adult and the kid of
    # image 0; the 95 % occluded adult of image 1 is not isValid).
    assert rep["num_images"] == 2 and rep["num_persons"] == 2
    files = sorted(os.listdir(export))
    assert len(files) == rep["metrics"]["exported_predictions"] > 0
    with open(os.path.join(export, files[0]), "rb") as f:
        pred = pickle.load(f)
    assert pred["joints"].shape == (24, 2) and pred["verts"].shape == (6890, 3)
    assert pred["params"]["body_pose"].shape == (1, 23, 3, 3) and pred["pose2rot"] is False


def test_panoptic_fixture_end_to_end(workdir, real_data):
    data_dir, bm = real_data
    rep = runner.evaluate(_config(data_dir, bm), workdir, "cmu_panoptic", progress=False)
    rep = _check_report(rep["path"], "cmu_panoptic", "crmh", ("haggling", "pizza", "mean"))
    assert rep["num_images"] == 3 and rep["num_persons"] == 5
    assert math.isfinite(rep["metrics"]["mean"]) and rep["metrics"]["mafia"] is None


# ------------------------------------------------------------------ matching + metric path


def _frames(data_dir: str, spec: str, split: str, input_size: int = 64):
    from siam_jax.data import mixture

    s = mixture.DatasetSpec.parse(spec, split)
    src = mixture.open_source(s, data_dir, skip_images=True)
    return [frames_lib.read_frame(src, i, input_size, spec) for i in range(len(src))]


def _gt_prediction(frame, gt: GtMeshes, order) -> Prediction:
    """Predictions equal to the GT people ``order`` (a permutation, possibly with extras)."""
    p = frame.persons
    verts, _ = gt(p, order)
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), (len(order), 24, 3, 3))
    return Prediction(
        joints_2d=p["joints_2d"][order], centres=p["joints_2d"][order, 0],
        joints_3d=p["joints_3d"][order], vertices=verts, global_orient=eye[:, :1],
        body_pose=eye[:, 1:], betas=p["betas"][order], transl=p["transl"][order],
    )  # fmt: skip


def test_gt_predictions_score_zero_and_f1_one(real_data):
    from siam_jax.body import get_body_model

    data_dir, _ = real_data
    body = get_body_model("")  # procedural seed 0 = the fixtures' SMPL_NEUTRAL
    gt = GtMeshes({"neutral": body})

    ev = evaluators.Pw3dEval(body, gt, "romp_vibe")
    for fr in _frames(data_dir, "pw3d:full", "test"):
        ev.add(fr, _gt_prediction(fr, gt, np.arange(len(fr.persons["valid"]))[::-1]))
    res = ev.result()
    assert res["num_persons"] == 5 and res["num_unmatched"] == 0
    for k in ("MPJPE", "PA-MPJPE", "PVE"):
        assert res[k] < 1e-3, (k, res[k])

    frames = _frames(data_dir, "agora:1280x720", "train")
    ev = evaluators.AgoraEval(gt, None)
    for fr in frames:
        p = fr.persons  # matchable: isValid and occlusion <= 90 (official get_matching)
        order = np.flatnonzero(p["valid"] & (p["occlusion"] <= 90))[::-1]
        ev.add(fr, _gt_prediction(fr, gt, order))
    res = ev.result()
    assert res["f1"] == 1.0 and res["num_misses"] == 0 and res["num_false_positives"] == 0
    assert res["body-MPJPE"] == 0.0 and res["body-MVE"] == 0.0

    # The occluded (95 %) person of image 1 predicted: the official evaluator calls it a false
    # positive (docs/evaluation.md); precision 2/3, F1 = 2 / (2 + 0.5) = 0.8.
    ev = evaluators.AgoraEval(gt, None)
    for fr in frames:
        ev.add(fr, _gt_prediction(fr, gt, np.arange(len(fr.persons["valid"]))))
    res = ev.result()
    assert res["num_false_positives"] == 1 and res["f1"] == 0.8 and res["precision"] == 0.67

    ev = evaluators.SyntheticEval(gt)  # AGORA frames: GT joints made with the neutral model
    for fr in frames:
        ev.add(fr, _gt_prediction(fr, gt, np.arange(len(fr.persons["valid"]))[::-1]))
    res = ev.result()
    assert res["num_unmatched"] == 0 and max(res["MPJPE"], res["PA-MPJPE"], res["PVE"]) < 1e-3

    class H36mIsFirst17:  # "regresses" H36M joints as the first 17 rows of the "vertices"
        @staticmethod
        def regress_h36m(v):
            return v[..., :17, :]

    ev = evaluators.PanopticEval(H36mIsFirst17())
    for fr in _frames(data_dir, "cmu_panoptic", "test"):
        j = fr.persons["joints_h36m_3d"][::-1] + np.float32(5.0)  # any offset: root-aligned
        z = np.zeros((len(j), 1))
        ev.add(fr, Prediction(z, z, z, j, z, z, z, z))  # only `vertices` is read
    res = ev.result()
    assert res["mean"] < 1e-2 and res["num_persons"] == 5 and res["num_mismatch"] == 0


def test_pipeline_pixels_map_back_to_the_stored_image(real_data):
    """The pipeline's joints_2d (input pixels) taken back by ``to_stored_pixels`` equal the
    record's (stored pixels): the inverse of the resize/pad the runner applies to predictions."""
    from siam_jax.data import pipeline

    data_dir, bm = real_data
    config = _config(data_dir, bm)
    config.batch_size = 3
    it = pipeline.make_iterator(
        config, train=False, dataset="pw3d:full/test", process_index=0, process_count=1
    )
    batch = next(it)
    frames = _frames(data_dir, "pw3d:full", "test")
    for b, fr in enumerate(frames):
        n = int(batch["person_valid"][b, 0].sum())
        assert n > 0
        got = frames_lib.to_stored_pixels(batch["joints_2d"][b, 0, :n], fr.to_stored)
        # Slots are ordered nearest first: compare as sets of people.
        ref = fr.persons["joints_2d"]
        for person in got:
            assert np.min(np.abs(ref - person).max(axis=(1, 2))) < 1e-2
