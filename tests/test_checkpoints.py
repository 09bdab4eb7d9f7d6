"""siam_jax.checkpoints: the state's items round-trip (typed RNG keys included), the iterator
state is the one captured at the step and is Grain's own format (a real Grain iterator resumes
from it through Grain's handler), a foreign process count or layout is a clear error, and
``restore_model`` needs the checkpoint's model item only (no optimizer, no training code)."""

from __future__ import annotations

import os
import shutil

import chex
import grain
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from siam_jax import checkpoints
from siam_jax.training import state as state_lib


class _Small(nnx.Module):
    """Params, BatchNorm statistics and a dropout RNG stream (typed keys in ``rest``)."""

    def __init__(self, rngs: nnx.Rngs):
        self.lin = nnx.Linear(3, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)


def _state(seed: int = 0):
    _, st = state_lib.create_train_state(_Small(nnx.Rngs(seed)), optax.adam(1e-3))
    return st.replace(step=st.step + 5)


def _abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def _filled(abstract):
    rng = np.random.default_rng(0)

    def leaf(a):
        if checkpoints.is_key(a):
            return jax.random.split(jax.random.key(int(rng.integers(1 << 30))), a.shape)
        if jax.numpy.issubdtype(a.dtype, jax.numpy.floating):
            return jax.numpy.asarray(rng.normal(size=a.shape), a.dtype)
        return jax.numpy.asarray(rng.integers(0, 100, size=a.shape), a.dtype)

    return jax.tree.map(leaf, abstract)


def _key_data(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if checkpoints.is_key(x) else x, tree)


def test_state_and_iterator_state_round_trip(tmp_path):
    state = _state()
    data_state = {"index": 3, "epoch": [1, 2]}
    ck = checkpoints.Checkpointer(str(tmp_path), keep=2)  # async saves
    ck.save(5, state, data_state)
    # What the trainer captured at the step is saved, not what the dict holds later.
    data_state["index"] = 99
    ck.close()

    assert {"data", "model", "train"} <= set(os.listdir(tmp_path / "5"))
    # One JSON file per process, Grain's layout.
    assert [f for f in os.listdir(tmp_path / "5" / "data") if f.endswith(".json")] == [
        "process_0-of-1.json"
    ]
    with checkpoints.Checkpointer(str(tmp_path), create=False) as ck:
        assert ck.latest_step() == 5
        got, got_data = ck.restore(5, _abstract(_state(seed=1)))
    assert got_data == {"index": 3, "epoch": [1, 2]}
    assert type(got) is type(state) and int(got.step) == 5
    chex.assert_trees_all_equal(_key_data(got), _key_data(state))
    keys = [x for x in jax.tree.leaves(got.rest) if checkpoints.is_key(x)]
    want = [x for x in jax.tree.leaves(state.rest) if checkpoints.is_key(x)]
    assert keys and [jax.random.key_impl(k) for k in keys] == [jax.random.key_impl(k) for k in want]


def test_meta_item_round_trips_and_is_empty_when_absent(tmp_path):
    meta = {
        checkpoints.META_BODY_MODEL: {"kind": "procedural", "path": None, "digest": "ab12"},
        checkpoints.META_CENTER_THRESHOLD: np.float32(0.375),  # numpy scalars are cleaned
        checkpoints.META_TRAIN_DATASETS: ["agora", "coco"],
    }
    with checkpoints.Checkpointer(str(tmp_path), async_save=False) as ck:
        ck.save(1, _state(), None)
        ck.save(2, _state(), None, meta=meta)
    with checkpoints.Checkpointer(str(tmp_path), create=False) as ck:
        assert ck.read_meta(1) == {}
        assert ck.read_meta(2) == {
            "body_model": {"kind": "procedural", "path": None, "digest": "ab12"},
            "center_threshold": 0.375,
            "train_datasets": ["agora", "coco"],
        }


def test_grain_resumes_its_own_iterator_from_the_saved_state(tmp_path):
    """Grain's handler, given a real Grain iterator, restores the position our checkpoint
    saved: the file is Grain's format, written where Grain looks for it."""
    it = iter(grain.MapDataset.range(20).to_iter_dataset())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    ck = checkpoints.Checkpointer(str(tmp_path), async_save=False)
    ck.save(1, _state(), it.get_state())
    ck.close()
    fresh = iter(grain.MapDataset.range(20).to_iter_dataset())
    with ocp.CheckpointManager(str(tmp_path)) as mgr:
        mgr.restore(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    assert next(fresh) == 3


def test_another_process_count_is_a_clear_error(tmp_path):
    ck = checkpoints.Checkpointer(str(tmp_path), async_save=False)
    ck.save(2, _state(), {"index": 2})
    ck.close()
    data = tmp_path / "2" / "data"
    os.rename(data / "process_0-of-1.json", data / "process_0-of-2.json")
    with checkpoints.Checkpointer(str(tmp_path), create=False) as ck:
        with pytest.raises(ValueError, match=r"another number of processes") as e:
            ck.restore(2, _abstract(_state()))
        assert "process_0-of-2.json" in str(e.value)
        state, data_state = ck.restore(2, _abstract(_state()), with_data=False)
    assert data_state is None and int(state.step) == 5


def _saved_tiny_run(tmp_path_factory, name: str, step: int, ema: bool):
    """A tiny SIAM's TrainState (with an EMA when ``ema``) saved at ``step`` as training saves
    it, and that state."""
    from configs import tiny
    from siam_jax import models

    config = tiny.get_config()
    body = models.load_body_model(config.model)

    def init():
        model = models.build_model(config.model, rngs=nnx.Rngs(0), body_model=body)
        tx = state_lib.make_optimizer(config)
        return state_lib.create_train_state(model, tx, ema=ema)[1]

    # Shapes only (building the model for real compiles for half a minute on CPU), then every
    # leaf filled with its own random values, so a restore cannot pass by re-initialising (and
    # an EMA differs from the parameters).
    state = _filled(jax.eval_shape(init))
    work = tmp_path_factory.mktemp(name)
    ck = checkpoints.Checkpointer(str(work / "checkpoints"), async_save=False)
    ck.save(step, state, {"index": step})
    ck.close()
    return config, work, state


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny SIAM's TrainState saved as training saves it, and that state."""
    return _saved_tiny_run(tmp_path_factory, "run", 4, ema=False)


def test_restore_model_reads_the_model_item_only(tiny_run, tmp_path):
    config, work, state = tiny_run
    run = tmp_path / "run"
    shutil.copytree(work, run)
    shutil.rmtree(run / "checkpoints" / "4" / "train")  # no optimizer state, no step counter
    model, step = checkpoints.restore_model(config, str(run))
    assert step == 4
    chex.assert_trees_all_equal(nnx.state(model, nnx.Param), state.params)
    assert model.backbone.bn1.use_running_average  # eval mode: running BN statistics
    # The full restore needs the train item, and says so.
    with checkpoints.Checkpointer(str(run / "checkpoints"), create=False) as ck:
        with pytest.raises(ValueError, match=r"no 'train' item"):
            ck.restore(4, jax.eval_shape(lambda: state))


def test_restore_model_errors_name_the_folder(tiny_run, tmp_path):
    config, work, _ = tiny_run
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 9 \(have \[4\]\)"):
        checkpoints.restore_model(config, str(work), step=9)
    old = tmp_path / "old"
    shutil.copytree(work / "checkpoints", old)
    os.rename(old / "4" / "model", old / "4" / "state")  # the layout before this package
    with pytest.raises(ValueError, match=r"no 'model' item .*'state'"):
        checkpoints.restore_model(config, str(old))


@pytest.fixture(scope="module")
def tiny_run_with_ema(tmp_path_factory):
    """As ``tiny_run``, with an EMA in the state (its own random values: EMA != params)."""
    return _saved_tiny_run(tmp_path_factory, "run_ema", 3, ema=True)


def test_restore_model_runs_the_ema_when_the_checkpoint_keeps_one(tiny_run_with_ema):
    config, work, state = tiny_run_with_ema
    leaves = zip(jax.tree.leaves(state.ema), jax.tree.leaves(state.params), strict=True)
    assert not all(np.array_equal(a, b) for a, b in leaves)  # the test can tell them apart
    model, step = checkpoints.restore_model(config, str(work))
    assert step == 3 and model.weights_source == "ema"
    chex.assert_trees_all_equal(nnx.state(model, nnx.Param), state.ema)
    raw = config.copy_and_resolve_references()
    raw.eval.use_ema = False  # --config.eval.use_ema=False: the raw parameters
    model, _ = checkpoints.restore_model(raw, str(work))
    assert model.weights_source == "params"
    chex.assert_trees_all_equal(nnx.state(model, nnx.Param), state.params)


def test_restore_model_without_ema_uses_the_parameters(tiny_run):
    config, work, state = tiny_run
    model, _ = checkpoints.restore_model(config, str(work))
    assert model.weights_source == "params"
    chex.assert_trees_all_equal(nnx.state(model, nnx.Param), state.params)


def test_an_ema_of_another_architecture_is_a_clear_error(tiny_run_with_ema):
    _, work, _ = tiny_run_with_ema
    with checkpoints.Checkpointer(str(work / "checkpoints"), create=False) as ck:
        wrong = jax.eval_shape(lambda: {"lin": jax.numpy.zeros((2, 2))})
        with pytest.raises(ValueError, match=r"train\.ema.*does not match"):
            ck.restore_ema(3, wrong)
