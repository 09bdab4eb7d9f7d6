"""The train step's parts, each against an independent expectation: gradient accumulation
(optax.MultiSteps) equals one step on the double batch on 4 fake devices, the parameter EMA
follows its closed form, backbone remat changes neither outputs nor gradients, the body model is
kept out of the train state and checkpoints (and another one is refused at restore), validation
without labelled persons is NaN, metrics rows merge across restarts, launch detection, the
workdir lock."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from siam_jax import body as body_lib
from siam_jax import checkpoints
from siam_jax.training import distributed, loop
from siam_jax.training import state as state_lib
from siam_jax.training import step as step_lib
from siam_jax.training.metrics_writer import read_metrics
from tests import test_train_helpers as h

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bn_free_state(config, tx, ema=False):
    # No BatchNorm (its batch statistics are per micro-batch, so accumulation cannot equal the
    # double batch there) and no dropout (its masks depend on the batch shape).
    model = h.FakeSIAM(h.FakeBody.make(), rngs=nnx.Rngs(0), dropout=0.0, batch_norm=False)
    return state_lib.create_train_state(model, tx, ema=ema)


def _unit_visibility_batch(index, batch_size):
    # The 2D term is normalised by the sum of visibilities; with random visibilities the two
    # micro-batches have different sums and the mean of their means is not the global mean.
    # Every other term averages over equal person counts in each half (make_batch's pattern).
    b = h.make_batch(index, batch_size)
    b["visibility"] = np.ones_like(b["visibility"])
    return b


def _params_after(config, tx, k, updates=2):
    mesh = step_lib.make_mesh()
    defs, state = _bn_free_state(config, tx)
    body = h.FakeBody.make()
    train_step = step_lib.make_train_step(config, defs, tx, mesh, state_lib.make_schedule(config))
    body_state = state_lib.body_state(defs, body)
    with jax.set_mesh(mesh):
        for i in range(updates):
            for micro in step_lib.micro_batches(_unit_visibility_batch(i, 8), k):
                batch = step_lib.shard_batch(micro, mesh, step_lib.TRAIN_KEYS)
                state, metrics = train_step(state, batch, body, body_state)
                assert bool(metrics["finite"])
    assert int(state.step) == updates
    return jax.tree.leaves(jax.device_get(state.params))


def accumulation_check() -> None:
    """Subprocess body (4 fake devices): k=2 micro-batches of 4 vs one batch of 8."""
    assert jax.device_count() == 4, jax.devices()
    worst = {}
    for name in ("adamw", "sgd"):
        got = {}
        for k in (1, 2):
            config = h.fake_config(**{"batch_size": 8, "optimizer.accumulate_steps": k})
            if name == "adamw":  # the trainer's own optimizer
                tx = state_lib.make_optimizer(config)
            else:  # plain SGD: sensitive to the gradient's scale (Adam is not)
                tx = optax.sgd(0.1)
                tx = optax.MultiSteps(tx, every_k_schedule=k) if k > 1 else tx
            got[k] = _params_after(config, tx, k)
        worst[name] = max(
            float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))
            for a, b in zip(got[2], got[1], strict=True)
        )
    print(json.dumps(worst))
    assert all(v < 1e-5 for v in worst.values()), worst


def test_accumulation_equals_the_double_batch_on_four_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    r = subprocess.run(
        [sys.executable, "-m", "tests.test_train_step", "accumulation"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


def test_micro_batches_split_rows_and_refuse_uneven():
    b = {"a": np.arange(8), "b": np.arange(16).reshape(8, 2)}
    parts = step_lib.micro_batches(b, 2)
    assert [p["a"].tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="micro-batches"):
        step_lib.micro_batches(b, 3)
    with pytest.raises(ValueError, match="accumulate_steps"):
        loop.validate_config(h.fake_config(**{"batch_size": 4, "optimizer.accumulate_steps": 3}))


def test_ema_follows_its_closed_form():
    """ema_n = d^n p_0 + (1 - d) sum_i d^(n-i) p_i over the parameters p_i after update i."""
    d = 0.8
    config = h.fake_config(**{"optimizer.ema_decay": d})
    tx = state_lib.make_optimizer(config)
    defs, state = _bn_free_state(config, tx, ema=True)
    mesh = step_lib.make_mesh()
    body = h.FakeBody.make()
    train_step = step_lib.make_train_step(config, defs, tx, mesh, state_lib.make_schedule(config))
    body_state = state_lib.body_state(defs, body)
    history = [jax.device_get(state.params)]
    with jax.set_mesh(mesh):
        for i in range(4):
            batch = step_lib.shard_batch(h.make_batch(i, 4), mesh, step_lib.TRAIN_KEYS)
            state, _ = train_step(state, batch, body, body_state)
            history.append(jax.device_get(state.params))
    n = len(history) - 1
    want = jax.tree.map(lambda *ps: d**n * ps[0], *history)
    for i in range(1, n + 1):
        want = jax.tree.map(lambda w, p, i=i: w + (1 - d) * d ** (n - i) * p, want, history[i])
    got = jax.device_get(state.ema)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    assert any(
        not np.allclose(g, p)
        for g, p in zip(jax.tree.leaves(got), jax.tree.leaves(history[-1]), strict=True)
    )  # the EMA is not the parameters
    # validation runs the EMA
    assert state_lib.eval_params(state) is state.ema


def test_backbone_remat_keeps_outputs_and_gradients():
    from siam_jax.models.hrnet import HRNet

    x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    results = []
    for remat in (False, True):
        model = HRNet(4, rngs=nnx.Rngs(0), num_modules=(1, 1, 1, 1), num_blocks=1, remat=remat)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(p, graphdef=graphdef, rest=rest):
            ys = nnx.merge(graphdef, p, rest, copy=True)(x)
            return sum(jnp.sum(jnp.square(y)) for y in ys), ys

        (value, ys), grads = jax.value_and_grad(loss, has_aux=True)(params)
        jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: loss(p)[0]))(params))
        results.append((value, ys, grads, "remat" in jaxpr or "checkpoint" in jaxpr))
    (v0, y0, g0, r0), (v1, y1, g1, r1) = results
    assert not r0 and r1  # remat is really on only when asked
    np.testing.assert_allclose(v1, v0, rtol=1e-6)
    for a, b in zip(
        jax.tree.leaves(y1) + jax.tree.leaves(g1),
        jax.tree.leaves(y0) + jax.tree.leaves(g0),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_body_model_is_not_in_the_train_state_nor_the_checkpoint(tmp_path):
    body = h.FakeBody.make()
    defs, state = state_lib.create_train_state(h.FakeSIAM(body, rngs=nnx.Rngs(0)), optax.adam(1e-3))
    n_body = len(jax.tree.leaves(body))
    assert len(jax.tree.leaves(defs.body)) == n_body
    sizes = {x.size for x in jax.tree.leaves(body)}
    assert not any(
        x.shape == body.posedirs.shape for x in jax.tree.leaves((state.params, state.rest))
    )
    ck = checkpoints.Checkpointer(str(tmp_path), async_save=False)
    ck.save(1, state, None, meta=loop.run_meta(h.fake_config(), body))
    ck.close()
    saved = [f for _, _, fs in os.walk(tmp_path / "1" / "model") for f in fs]
    assert not any("body" in f or "posedirs" in f for f in saved), saved
    meta = checkpoints.Checkpointer(str(tmp_path), create=False).read_meta(1)
    assert meta[checkpoints.META_BODY_MODEL]["digest"] == body_lib.body_model_digest(body)
    assert meta[checkpoints.META_TRAIN_DATASETS] == ["siam_synthetic"]
    assert sizes  # the body has arrays at all


def test_restore_model_refuses_another_body_model_naming_both(tmp_path):
    from configs import tiny
    from siam_jax import models
    from tests.test_checkpoints import _filled

    config = tiny.get_config()
    body = models.load_body_model(config.model)

    def init():
        model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
        return state_lib.create_train_state(model, state_lib.make_optimizer(config))[1]

    state = _filled(jax.eval_shape(init))
    ck = checkpoints.Checkpointer(str(tmp_path / "checkpoints"), async_save=False)
    ck.save(3, state, None, meta=loop.run_meta(config, body))
    ck.close()
    model, step = checkpoints.restore_model(config, str(tmp_path))
    assert step == 3
    # the body comes from the config, not from the checkpoint
    np.testing.assert_array_equal(model.body.get_value().v_template, body.v_template)
    other = tiny.get_config()
    other.model.body_model.procedural_seed = 7
    other_body = models.load_body_model(other.model)
    a, b = body_lib.body_model_digest(body), body_lib.body_model_digest(other_body)
    assert a != b
    with pytest.raises(ValueError) as e:
        checkpoints.restore_model(other, str(tmp_path))
    assert a in str(e.value) and b in str(e.value), str(e.value)


def test_validation_without_labelled_persons_is_nan_and_says_why(caplog):
    config = h.fake_config()
    body = h.FakeBody.make()
    mesh = step_lib.make_mesh()
    defs, state = state_lib.create_train_state(h.FakeSIAM(body, rngs=nnx.Rngs(0)), optax.adam(0.1))
    eval_step = step_lib.make_eval_step(config, defs, mesh)

    def no_labels(config, pi, pc):
        b = h.make_batch(0, 4)
        b["has_3d"][:] = False
        b["has_smpl"][:] = False
        return [b]

    def labelled(config, pi, pc):
        return [h.make_batch(0, 4)]

    args = (config, state, eval_step, body, state_lib.body_state(defs, body), mesh)
    with jax.set_mesh(mesh), caplog.at_level(logging.WARNING):
        empty = loop.evaluate(*args, no_labels)
        full = loop.evaluate(*args, labelled)
    for key in ("val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pve_mm"):
        assert math.isnan(empty[key]), key
        assert math.isfinite(full[key]) and full[key] > 0, key
    assert empty["val_persons"] == 0 and full["val_persons"] == 6
    assert "has_3d" in caplog.text and "has_smpl" in caplog.text


def test_read_metrics_drops_stale_rows_of_a_restarted_run(tmp_path):
    rows = [
        {"step": 0, "event": "start"},
        {"step": 1, "loss": 5.0},
        {"step": 2, "loss": 4.0},
        {"step": 2, "val_mpjpe_mm": 90.0},
        {"step": 3, "loss": 3.0, "stale": 1},
        {"step": 4, "loss": 2.5},
        {"step": 4, "val_mpjpe_mm": 80.0},  # killed after this; checkpoint at step 2
        {"step": 2, "event": "start"},
        {"step": 3, "loss": 3.1},
        {"step": 4, "loss": 2.6},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = read_metrics(str(path))
    assert got == {
        1: {"step": 1, "loss": 5.0},
        2: {"step": 2, "loss": 4.0, "val_mpjpe_mm": 90.0},
        3: {"step": 3, "loss": 3.1},
        4: {"step": 4, "loss": 2.6},
    }
    # a file written before start rows: a step going back begins the resumed run
    old = [r for r in rows if "event" not in r]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    assert read_metrics(str(path)) == got


@pytest.mark.parametrize(
    "env, want",
    [
        ({}, None),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2"}, "explicit"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "1"}, None),
        ({"SLURM_JOB_ID": "5", "SLURM_NTASKS": "8"}, "slurm"),
        ({"SLURM_JOB_ID": "5", "SLURM_NTASKS": "1"}, None),  # one task: nothing to join
        ({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4"}, "openmpi"),
        ({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}, "cloud_tpu"),
        ({"TPU_WORKER_HOSTNAMES": "t0"}, None),
        ({"MEGASCALE_COORDINATOR_ADDRESS": "c:8080"}, "cloud_tpu"),
        ({"SIAM_JAX_DISTRIBUTED": "1"}, "forced"),
    ],
)
def test_launch_detection(env, want):
    assert distributed.detect_launch(env) == want


def test_a_second_run_into_a_locked_workdir_is_refused(tmp_path):
    with distributed.WorkdirLock(str(tmp_path)):
        with pytest.raises(distributed.WorkdirLockedError) as e:
            loop.train_and_evaluate(h.fake_config(), str(tmp_path), **h.fake_hooks())
    msg = str(e.value)
    assert str(os.getpid()) in msg and "train.lock" in msg, msg
    assert not os.path.exists(tmp_path / "checkpoints")
    distributed.WorkdirLock(str(tmp_path)).acquire().release()  # free again once released


if __name__ == "__main__":
    if sys.argv[1:] == ["accumulation"]:
        accumulation_check()
