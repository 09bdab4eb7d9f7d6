"""Trainer guarantees on the fake model (tests/test_train_helpers.py): exact data parallelism
(4 fake devices; 2 processes, through a SIGTERM to one of them), exact resume after SIGKILL,
SIGTERM checkpoints, the non-finite guard rail, the body-model record, and clear errors for a
foreign checkpoint. The real model: test_train_e2e.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from siam_jax import checkpoints
from siam_jax.training import loop
from siam_jax.training.metrics_writer import read_metrics
from tests import test_train_helpers as h

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 6


def _run_subprocess(workdir, overrides=None, action="none", devices=1, env_extra=None, wait=True):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env.update(env_extra or {})
    cmd = [
        sys.executable,
        "-m",
        "tests.test_train_helpers",
        str(workdir),
        json.dumps(overrides or {}),
        action,
    ]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait:
        return p
    out, err = p.communicate(timeout=300)
    return p.returncode, out.decode(), err.decode()


def _losses(workdir) -> dict[int, float]:
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    return {s: r["loss"] for s, r in rows.items() if "loss" in r}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The uninterrupted 1-device, 1-process run every other run must reproduce."""
    workdir = tmp_path_factory.mktemp("reference")
    h.run_fake_training(str(workdir))
    losses = _losses(workdir)
    assert sorted(losses) == list(range(1, STEPS + 1))
    return workdir, losses


def _assert_same_losses(got, want, rtol):
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for s in want:
        np.testing.assert_allclose(got[s], want[s], rtol=rtol, err_msg=f"step {s}")


def test_reference_run_learns_and_logs(reference_run):
    workdir, losses = reference_run
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    for key in (
        "loss",
        "loss_center",
        "loss_pose",
        "loss_vertices",
        "l2_grads",
        "l2_params",
        "learning_rate",
        "step_time",
        "images_per_sec",
    ):
        assert key in rows[2], key
    assert losses[STEPS] < losses[1]  # the fake model does learn
    # warmup (2 steps, from 0) then cosine to 1% at step 6: the rate each step used
    peak = 1e-2
    np.testing.assert_allclose(rows[1]["learning_rate"], 0.0, atol=1e-12)
    np.testing.assert_allclose(rows[2]["learning_rate"], peak / 2, rtol=1e-6)
    np.testing.assert_allclose(rows[3]["learning_rate"], peak, rtol=1e-6)
    cos = 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 2 / 4))  # step index 4 of 6, after warmup
    np.testing.assert_allclose(rows[5]["learning_rate"], peak * cos, rtol=1e-5)
    assert sorted(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit()) == [2, 4, 6]
    assert rows[STEPS]["val_mpjpe_mm"] > 0 and "val_pa_mpjpe_mm" in rows[STEPS]
    assert os.listdir(workdir / "tensorboard")


def test_four_devices_equal_one(reference_run, tmp_path):
    _, want = reference_run
    rc, _, err = _run_subprocess(tmp_path, devices=4)
    assert rc == 0, err[-3000:]
    _assert_same_losses(_losses(tmp_path), want, rtol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_resume_after_sigkill_is_exact(reference_run, tmp_path):
    _, want = reference_run
    # killed while batch 3 is requested, i.e. after the step-2 checkpoint; steps 1-3 are logged
    rc, _, _ = _run_subprocess(tmp_path, action="kill:3")
    assert rc == -9
    assert checkpoints.Checkpointer(str(tmp_path / "checkpoints"), keep=3).latest_step() == 2
    h.run_fake_training(str(tmp_path))  # restart in the same workdir
    _assert_same_losses(_losses(tmp_path), want, rtol=1e-6)


def test_sigterm_saves_a_restorable_checkpoint(tmp_path):
    rc, out, err = _run_subprocess(tmp_path, {"checkpoint_every_steps": 100}, action="term:2")
    assert rc == 0, err[-3000:]
    assert "preempted" in out
    ckpt = checkpoints.Checkpointer(str(tmp_path / "checkpoints"), keep=3)
    # the batch of step 3 was being requested when SIGTERM arrived: the step runs, then saves
    assert ckpt.latest_step() == 3
    rows = read_metrics(str(tmp_path / "metrics.jsonl"))
    assert max(rows) == 3
    # restorable: a restart continues from step 3 with the iterator at batch 3
    h.run_fake_training(str(tmp_path), json.dumps({"checkpoint_every_steps": 100}))
    rows = read_metrics(str(tmp_path / "metrics.jsonl"))
    assert max(rows) == STEPS
    assert json.loads(
        (tmp_path / "checkpoints" / "6" / "data" / "process_0-of-1.json").read_text()
    ) == {"index": STEPS}


def test_nan_stops_without_writing_that_checkpoint(tmp_path):
    config = h.fake_config(**{"debug.nan_at_step": 3, "checkpoint_every_steps": 1})
    with pytest.raises(loop.NonFiniteError) as e:
        loop.train_and_evaluate(config, str(tmp_path), **h.fake_hooks())
    msg = str(e.value)
    assert "(2, 3]" in msg and os.path.join("checkpoints", "2") in msg, msg
    steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
    assert steps == [1, 2]
    assert max(read_metrics(str(tmp_path / "metrics.jsonl"))) == 2


def test_checkpoint_of_another_architecture_names_the_key(reference_run, tmp_path):
    from flax import nnx

    workdir, _ = reference_run
    shutil.copytree(workdir / "checkpoints", tmp_path / "checkpoints")

    class Wider(h.FakeSIAM):
        def __init__(self, body, *, rngs):
            super().__init__(body, rngs=rngs)
            self.conv = nnx.Conv(3, 16, (8, 8), strides=(8, 8), rngs=rngs)
            self.bn = nnx.BatchNorm(16, rngs=rngs)
            self.head = nnx.Conv(16, 1, (1, 1), rngs=rngs)
            self.reg = nnx.Linear(16, 24 * 6 + 13, rngs=rngs)

    hooks = h.fake_hooks()
    body = hooks["body_model"]
    hooks["build_model"] = lambda config, rngs: Wider(body, rngs=rngs)
    with pytest.raises(ValueError, match=r"key 'params\.bn\.bias' has shape \(8,\)") as e:
        loop.train_and_evaluate(h.fake_config(total_steps=8), str(tmp_path), **hooks)
    assert "another architecture" in str(e.value)


def test_misspelled_config_override_names_the_key(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            "configs/default.py",
            "--config.optimizer.learning_rat=0.1",
            f"--workdir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "learning_rat" in r.stderr, r.stderr[-2000:]


def test_profile_and_init_checkpoint(reference_run, tmp_path):
    """Profiling writes a trace of the chosen step; init_checkpoint starts from another run's
    parameters and model state (step 0, fresh optimizer): its first loss is the one the other run
    computes when continued one more step on the same batch."""
    workdir, _ = reference_run
    cont = tmp_path / "continued"
    shutil.copytree(workdir / "checkpoints", cont / "checkpoints")
    loop.train_and_evaluate(h.fake_config(total_steps=STEPS + 1), str(cont), **h.fake_hooks())
    want = _losses(cont)[STEPS + 1]  # loss(parameters after 6 steps, batch 6)

    config = h.fake_config(
        **{"total_steps": 1, "profile.steps": (1,), "init_checkpoint": str(workdir / "checkpoints")}
    )
    hooks = h.fake_hooks()

    def from_batch_6(config, pi, pc):
        it = h.FakeIterator(config, pi, pc)
        it.index = STEPS
        return it

    hooks["make_train_iterator"] = from_batch_6
    init = tmp_path / "init"
    loop.train_and_evaluate(config, str(init), **hooks)
    traces = [f for _, _, fs in os.walk(init / "profile") for f in fs]
    assert any(f.endswith((".xplane.pb", ".trace.json.gz")) for f in traces), traces
    got = _losses(init)
    assert list(got) == [1]
    np.testing.assert_allclose(got[1], want, rtol=1e-6)


def test_checkpoints_record_the_body_model_and_refuse_another(reference_run, tmp_path):
    """Each checkpoint records the body model's digest and the training datasets; resuming or
    initialising from it with another body model fails naming both digests."""
    from siam_jax import body as body_lib

    workdir, _ = reference_run
    meta = checkpoints.Checkpointer(str(workdir / "checkpoints"), create=False).read_meta(STEPS)
    trained = body_lib.body_model_digest(h.FakeBody.make())
    assert meta[checkpoints.META_BODY_MODEL]["digest"] == trained
    assert meta[checkpoints.META_TRAIN_DATASETS] == ["siam_synthetic"]

    other = h.FakeBody.make(seed=1)
    hooks = h.fake_hooks()
    hooks.update(body_model=other, build_model=lambda config, rngs: h.FakeSIAM(other, rngs=rngs))
    other_digest = body_lib.body_model_digest(other)
    shutil.copytree(workdir / "checkpoints", tmp_path / "resume" / "checkpoints")
    init = h.fake_config(init_checkpoint=str(workdir / "checkpoints"))
    for config, where in ((h.fake_config(total_steps=8), "resume"), (init, "init")):
        with pytest.raises(ValueError) as e:
            loop.train_and_evaluate(config, str(tmp_path / where), **hooks)
        assert trained in str(e.value) and other_digest in str(e.value), str(e.value)


def test_two_processes_equal_one_across_a_sigterm_to_one_of_them(reference_run, tmp_path):
    """Two processes (2 x 2 rows of each batch) reproduce the 1-process run, through a preemption:
    only process 0 is signalled; the flag is all-reduced, so both processes checkpoint the same
    step and exit, and both resumed finish the run exactly."""
    _, want = reference_run
    overrides = {"checkpoint_every_steps": 100}

    def launch(action):
        port = _free_port()
        procs = [
            _run_subprocess(
                tmp_path,
                overrides,
                action=action,
                wait=False,
                env_extra={
                    "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                    "JAX_NUM_PROCESSES": "2",
                    "JAX_PROCESS_ID": str(i),
                },
            )
            for i in range(2)
        ]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-3000:]
            outs.append(out.decode())
        return outs

    outs = launch("term0:2")
    # signalled while batch 2 (step 3) was requested; agreed one step later, on both
    assert "preempted: checkpoint" in outs[0] and "/checkpoints/4 written" in outs[0], outs[0]
    ckdir = tmp_path / "checkpoints"
    assert sorted(int(d) for d in os.listdir(ckdir) if d.isdigit()) == [4]
    for i in range(2):
        state = json.loads((ckdir / "4" / "data" / f"process_{i}-of-2.json").read_text())
        assert state == {"index": 4}, (i, state)
    launch("none")
    _assert_same_losses(_losses(tmp_path), want, rtol=1e-5)
