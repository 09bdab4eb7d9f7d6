"""The SIAM trainer (big_vision style, in named steps): ``TrainLoop`` sets up the hosts, the mesh,
the input, the model and optimizer (``__init__``), restores or initialises the state
(``restore_or_init``), compiles the steps, then runs the loop (``run``), each step of which logs,
checkpoints and evaluates at its intervals.

``train_and_evaluate(config, workdir)`` is what ``train.py`` calls. The keyword hooks (model,
iterators, body model) exist for tests and experiments; by default everything comes from the
config.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import jax
import numpy as np
from absl import logging
from flax import nnx

from siam_jax import body as body_lib
from siam_jax import checkpoints
from siam_jax.training import distributed
from siam_jax.training import losses as losses_lib
from siam_jax.training import metrics_writer as mw
from siam_jax.training import state as state_lib
from siam_jax.training import step as step_lib

# Kept as this module's names: train.py and tests call them here.
maybe_initialize_distributed = distributed.maybe_initialize_distributed


class NonFiniteError(RuntimeError):
    """The loss or the gradient turned non-finite; the run stopped without saving that step."""


def validate_config(config) -> None:
    """Clear errors, naming the key, for values the trainer cannot run with."""
    n = jax.device_count()
    k = state_lib.accumulate_steps(config)
    if int(config.total_steps) <= 0:
        raise ValueError(f"config.total_steps must be positive, got {config.total_steps}")
    if int(config.batch_size) % (n * k):
        raise ValueError(
            f"config.batch_size={config.batch_size} is not divisible by the {n} devices times "
            f"config.optimizer.accumulate_steps={k} (each micro-batch is split evenly over the "
            "'data' mesh axis)"
        )
    for key in ("log_every_steps", "checkpoint_every_steps", "eval_every_steps"):
        if int(config[key]) <= 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}")
    state_lib.ema_decay(config)
    step_lib.compute_dtype_of(config)


# ================================================================================= defaults
def default_build_model(body_model) -> Callable:
    """``build(config, rngs)`` of the SIAM model of the config, around the given body model."""
    from siam_jax import models

    def build(config, rngs: nnx.Rngs) -> nnx.Module:
        # config.model.backbone.remat is applied by models.siam (``_make_backbone``).
        return models.build_model(config.model, rngs=rngs, body_model=body_model)

    return build


def default_body_model(config):
    """The body model of ``config.model.body_model`` ("" path = the procedural model); the
    model's own loader, so the GT meshes of the losses come from the same body."""
    from siam_jax import models

    return models.load_body_model(config.model)


def default_train_iterator(config, process_index: int, process_count: int):
    from siam_jax.data import pipeline

    return pipeline.make_iterator(
        config, train=True, process_index=process_index, process_count=process_count
    )


def default_eval_iterator(config, process_index: int, process_count: int):
    from siam_jax.data import pipeline

    return pipeline.make_iterator(
        config,
        train=False,
        process_index=process_index,
        process_count=process_count,
        num_examples=int(config.data.num_eval_examples),
    )


def load_pretrained_backbone(config, build_model):
    """``(params, rest)`` of a freshly built model with the PyTorch (timm) HRNet weights copied
    into its backbone (``siam_jax.models.convert.load_torch_hrnet``: every tensor filled, or an
    error naming the missing, unexpected and mis-shaped keys)."""
    from siam_jax.models import convert

    model = build_model(config, nnx.Rngs(int(config.seed)))
    bb = config.model.backbone
    report = convert.load_torch_hrnet(  # strict: fills every tensor or raises naming the keys
        model.backbone, bb.pretrained, allow_single_scale=bool(bb.pretrained_allow_single_scale)
    )
    logging.info("pretrained backbone %s: %s", bb.pretrained, report.summary())
    _, params, rest = state_lib.split_model(model)
    return params, rest


# ================================================================================= helpers
def _replicate(tree, mesh):
    """Host arrays -> replicated global arrays (valid in multi-process runs too)."""
    repl = step_lib.replicated(mesh)

    def put(x):
        if checkpoints.is_key(x):  # typed PRNG keys travel as their key data
            data = put(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, repl, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def evaluate(config, state, eval_step, body_model, body, mesh, make_eval_iterator) -> dict:
    """MPJPE, PA-MPJPE, PVE (mm, pelvis-aligned) over the held-out split; one pass. A metric
    with no person to average over (no 3D labels / no SMPL labels in the split) is NaN, with a
    warning saying why, never 0 (issue 20)."""
    pi, pc = jax.process_index(), jax.process_count()
    sums = {"mpjpe": 0.0, "pa_mpjpe": 0.0, "pve": 0.0}
    counts = {"mpjpe": 0, "pa_mpjpe": 0, "pve": 0}
    mask_of = {"mpjpe": "mask_3d", "pa_mpjpe": "mask_3d", "pve": "mask_smpl"}
    for batch in make_eval_iterator(config, pi, pc):
        sharded = step_lib.shard_batch(batch, mesh, step_lib.EVAL_KEYS)
        out = jax.device_get(eval_step(state, sharded, body_model, body))
        for name in sums:
            m = np.asarray(out[mask_of[name]], bool)
            sums[name] += float(np.sum(np.asarray(out[name], np.float64)[m]))
            counts[name] += int(m.sum())
    result = {}
    for k in sums:
        if counts[k] == 0:
            label = "3D joints (has_3d)" if mask_of[k] == "mask_3d" else "SMPL fits (has_smpl)"
            logging.warning(
                "validation %s is NaN: no valid person of %s:%s has %s",
                k, config.data.eval_dataset, config.data.eval_split, label,
            )  # fmt: skip
        # metres -> millimetres only here, in the report (DESIGN.md conventions).
        result[f"val_{k}_mm"] = 1000.0 * sums[k] / counts[k] if counts[k] else math.nan
    result["val_persons"] = counts["mpjpe"]
    return result


class _Profiler:
    """Traces the steps listed in ``config.profile.steps`` into ``WORKDIR/profile``."""

    def __init__(self, steps, logdir: str):
        self.steps = {int(s) for s in steps}
        self.logdir = logdir
        self.active = False

    def before(self, step: int) -> None:
        if step in self.steps and not self.active:
            jax.profiler.start_trace(self.logdir)
            self.active = True

    def after(self, step: int, out) -> None:
        if self.active and step + 1 not in self.steps:
            jax.block_until_ready(out)
            jax.profiler.stop_trace()
            self.active = False
            logging.info("profile of steps up to %d written to %s", step, self.logdir)


def _say(msg: str) -> None:
    if jax.process_index() == 0:
        print(msg, flush=True)
    logging.info(msg)


# ================================================================================= trainer
def train_datasets(config) -> list[str]:
    """The dataset names of ``config.data.train`` (a mixture of ``(name, weight)`` entries)."""
    return [str(e[0] if isinstance(e, (tuple, list)) else e) for e in config.data.train]


def run_meta(config, body_model) -> dict:
    """What each checkpoint records about the run (``checkpoints.META_*``)."""
    return {
        checkpoints.META_BODY_MODEL: body_lib.describe_body_model(
            config.model.body_model, body_model
        ),
        checkpoints.META_TRAIN_DATASETS: train_datasets(config),
    }


class TrainLoop:
    """One training run of ``config`` in ``workdir``; ``run()`` trains (resuming there if it
    holds checkpoints), evaluates and returns the last validation metrics."""

    def __init__(
        self,
        config,
        workdir: str,
        *,
        build_model: Callable | None = None,
        body_model=None,
        make_train_iterator: Callable | None = None,
        make_eval_iterator: Callable | None = None,
    ):
        self.t_start = time.perf_counter()
        distributed.maybe_initialize_distributed()
        validate_config(config)
        self.config, self.workdir = config, workdir
        self.make_train_iterator = make_train_iterator or default_train_iterator
        self.make_eval_iterator = make_eval_iterator or default_eval_iterator
        self.host_body_model = default_body_model(config) if body_model is None else body_model
        self.build_model = build_model or default_build_model(self.host_body_model)
        self.meta = run_meta(config, self.host_body_model)
        self.accumulate = state_lib.accumulate_steps(config)
        self.total = int(config.total_steps)

    # ------------------------------------------------------------------- setup
    def _init_state(self) -> state_lib.TrainState:
        model = self.build_model(self.config, nnx.Rngs(int(self.config.seed)))
        self._defs, train_state = state_lib.create_train_state(
            model, self.tx, ema=state_lib.ema_decay(self.config) > 0
        )
        return train_state

    def setup(self) -> None:
        """Mesh, input, body model, optimizer, the abstract state and the checkpointer."""
        config = self.config
        pi, pc = jax.process_index(), jax.process_count()
        _say(
            f"siam-jax train: {jax.device_count()} devices, {pc} processes, workdir {self.workdir}"
        )
        if config.get("quickstart", False):
            from siam_jax.training import quickstart

            quickstart.ensure_synthetic_data(config)
        self.mesh = step_lib.make_mesh()
        self.repl = step_lib.replicated(self.mesh)
        self.train_iter = self.make_train_iterator(config, pi, pc)
        self.body_model = _replicate(self.host_body_model, self.mesh)
        self.tx = state_lib.make_optimizer(config)
        self.schedule = state_lib.make_schedule(config)
        # Shapes first (nothing allocated), then the state created already replicated
        # (big_vision). The graph definitions (static) are taken from the same trace.
        abstract = jax.eval_shape(self._init_state)
        self.abstract_state = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.repl), abstract
        )
        self.defs = self._defs
        # The body arrays enter the steps as an argument, not from the state (issue 15).
        self.body = state_lib.body_state(self.defs, self.body_model)
        self.ckpt = checkpoints.Checkpointer(
            os.path.join(self.workdir, "checkpoints"), keep=int(config.keep_checkpoints)
        )

    def _with_model(self, state, params, rest):
        """``state`` with these model weights (the EMA, when kept, starts at them)."""
        ema = None if state.ema is None else jax.tree.map(lambda x: x.copy(), params)
        return state.replace(params=params, rest=rest, ema=ema)

    def restore_or_init(self) -> None:
        """Order: 1) this workdir's latest checkpoint (a restart), 2) config.init_checkpoint,
        3) PyTorch HRNet weights (config.model.backbone.pretrained), 4) from scratch. A
        checkpoint of another body model is refused, naming both digests."""
        config, ckpt = self.config, self.ckpt
        expected_body = self.meta[checkpoints.META_BODY_MODEL]
        latest = ckpt.latest_step()
        self.data_state = None
        if latest is not None:
            where = os.path.join(ckpt.directory, str(latest))
            checkpoints.check_body_model(ckpt.read_meta(latest), expected_body, where)
            state, self.data_state = ckpt.restore(latest, self.abstract_state)
            if self.data_state is not None:
                self.train_iter.set_state(self.data_state)
            _say(f"resumed from {where}")
        else:
            state = jax.jit(self._init_state, out_shardings=self.repl)()
            if config.init_checkpoint:
                loaded = checkpoints.restore_params_from(
                    config.init_checkpoint, self.abstract_state, body_model=expected_body
                )
                state = self._with_model(state, loaded.params, loaded.rest)
                _say(f"initialised from config.init_checkpoint={config.init_checkpoint}")
            elif config.model.backbone.pretrained:
                params, rest = load_pretrained_backbone(config, self.build_model)
                params, rest = _replicate(params, self.mesh), _replicate(rest, self.mesh)
                state = self._with_model(state, params, rest)
                _say(f"backbone from {config.model.backbone.pretrained}")
            else:
                _say("initialised from scratch")
        self.state = state
        self.step = int(jax.device_get(state.step))
        self.last_saved = latest

    def compile(self) -> None:
        """The jitted train and eval steps and the host-side bookkeeping of the loop."""
        self.train_step = step_lib.make_train_step(
            self.config, self.defs, self.tx, self.mesh, self.schedule
        )
        self.eval_step = step_lib.make_eval_step(self.config, self.defs, self.mesh)
        self.finite_fn = jax.jit(lambda s: state_lib.all_finite((s.params, s.rest, s.ema)))
        self.writer = mw.MetricsWriter(self.workdir)
        self.writer.mark_start(self.step)
        profile_dir = os.path.join(self.workdir, "profile")
        self.profiler = _Profiler(self.config.profile.steps, profile_dir)
        self.progress = mw.Progress(self.total, self.step)
        self.images_per_step = int(self.config.batch_size) * int(self.config.model.clip_len)
        self.data_state_at_step = self.train_iter.get_state()
        self.last_finite_step, self.finite_since = self.step, None
        self.t_log, self.steps_since_log = time.perf_counter(), 0

    # ------------------------------------------------------------------- one step
    def _mesh_points(self, micro) -> bool | None:
        """The static ``mesh_points`` of this micro-batch (``losses.mesh_points_supervised``).
        With several processes each sees only its rows and could pick another compiled step
        than the others, so there the device decides (None: the step's ``lax.cond``)."""
        if jax.process_count() > 1:
            return None
        return losses_lib.mesh_points_supervised(micro, self.config.loss)

    def train_one(self, preemption) -> dict:
        """One optimizer update: the next batch, as ``accumulate`` micro-batches."""
        batch = next(self.train_iter)
        preemption.rearm()
        self.data_state_at_step = self.train_iter.get_state()
        self.profiler.before(self.step + 1)
        per_micro = []
        for micro in step_lib.micro_batches(batch, self.accumulate):
            sharded = step_lib.shard_batch(micro, self.mesh, step_lib.TRAIN_KEYS)
            mesh_points = self._mesh_points(micro)
            self.state, m = self.train_step(
                self.state, sharded, self.body_model, self.body, mesh_points
            )
            per_micro.append(m)
        metrics = step_lib.mean_metrics(per_micro)
        self.step += 1
        self.steps_since_log += 1
        self.profiler.after(self.step, metrics)
        # The guard rail. A non-finite step leaves the state as it was (train_step keeps the
        # last finite state), so the flag is only read where something leaves the device (a log
        # row, a checkpoint, an evaluation, the end): the loop never waits on the device between
        # those, and the host prepares the next step meanwhile.
        f = metrics["finite"]
        self.finite_since = f if self.finite_since is None else self.finite_since & f
        return metrics

    def check_finite(self, metrics) -> None:
        """Raises ``NonFiniteError`` when a step since the last check was not finite."""
        if not bool(jax.device_get(self.finite_since)):
            m = jax.device_get(metrics)
            last = (
                f"{self.ckpt.directory}/{self.last_saved}"
                if self.last_saved is not None
                else "none"
            )
            raise NonFiniteError(
                f"non-finite loss or gradient in steps ({self.last_finite_step}, {self.step}] "
                f"(last step: loss={float(m['loss'])}, l2_grads={float(m['l2_grads'])}); "
                f"last good checkpoint: {last}"
            )
        self.last_finite_step, self.finite_since = self.step, None

    def log(self, metrics) -> None:
        m = jax.device_get(metrics)
        dt = time.perf_counter() - self.t_log
        m.pop("finite")
        m["step_time"] = dt / self.steps_since_log
        m["images_per_sec"] = self.images_per_step * self.steps_since_log / dt
        self.writer.write(self.step, m)
        _say(self.progress.line(self.step, float(m["loss"]), m["images_per_sec"]))
        self.t_log, self.steps_since_log = time.perf_counter(), 0

    def save(self) -> None:
        if not bool(jax.device_get(self.finite_fn(self.state))):
            raise NonFiniteError(f"step {self.step}: parameters not finite; checkpoint not written")
        self.ckpt.save(self.step, self.state, self.data_state_at_step, meta=self.meta)
        self.last_saved = self.step

    def evaluate(self) -> dict:
        result = evaluate(
            self.config,
            self.state,
            self.eval_step,
            self.body_model,
            self.body,
            self.mesh,
            self.make_eval_iterator,
        )
        self.writer.write(self.step, result)
        _say(
            f"step {self.step} validation: MPJPE {result['val_mpjpe_mm']:.1f} mm, "
            f"PA-MPJPE {result['val_pa_mpjpe_mm']:.1f} mm, "
            f"PVE {result['val_pve_mm']:.1f} mm ({result['val_persons']} persons)"
        )
        self.t_log = time.perf_counter()  # evaluation time is not step time
        return result

    # ------------------------------------------------------------------- the loop
    def _due(self, every_key: str) -> bool:
        return self.step % int(self.config[every_key]) == 0 or self.step == self.total

    def loop(self) -> dict:
        """Steps to ``total_steps`` (or a preemption); logs, saves, evaluates at intervals."""
        result: dict = {}
        with jax.set_mesh(self.mesh), distributed.Preemption(self.mesh) as preemption:
            while self.step < self.total:
                metrics = self.train_one(preemption)
                stop = preemption.stop_now()  # the same answer on every process
                log_now = self._due("log_every_steps")
                save_now = self._due("checkpoint_every_steps")
                eval_now = self._due("eval_every_steps")
                if log_now or save_now or eval_now or stop:
                    self.check_finite(metrics)
                if log_now:
                    self.log(metrics)
                if save_now or (stop and self.last_saved != self.step):
                    self.save()
                if stop:
                    self.ckpt.wait()
                    _say(
                        f"preempted: checkpoint {self.ckpt.directory}/{self.step} written; exiting"
                    )
                    break
                if eval_now:
                    result = self.evaluate()
        return result

    def close(self) -> None:
        if getattr(self, "profiler", None) is not None and self.profiler.active:
            jax.profiler.stop_trace()
        if getattr(self, "ckpt", None) is not None:
            self.ckpt.close()
        if getattr(self, "writer", None) is not None:
            self.writer.close()

    def run(self) -> dict:
        os.makedirs(self.workdir, exist_ok=True)
        with distributed.WorkdirLock(self.workdir):
            try:
                self.setup()
                self.restore_or_init()
                self.compile()
                result = self.loop()
                if not result and self.step >= self.total:  # restarted after the end
                    result = self.evaluate()
            finally:
                self.close()
        result = dict(result, step=self.step, wall_seconds=time.perf_counter() - self.t_start)
        if self.config.get("quickstart", False) and self.step >= self.total:
            from siam_jax.training import quickstart

            quickstart.report(
                self.config, self.workdir, self.body_model, self.make_eval_iterator, result
            )
        return result


def train_and_evaluate(config, workdir: str, **hooks) -> dict[str, float]:
    """Trains ``config`` in ``workdir`` (resuming there if it holds checkpoints), evaluates.

    ``hooks``: ``build_model``, ``body_model``, ``make_train_iterator``, ``make_eval_iterator``
    (``TrainLoop``). Returns the last validation metrics (``val_mpjpe_mm``, ``val_pa_mpjpe_mm``,
    ``val_pve_mm``), ``step`` and ``wall_seconds``. Raises ``NonFiniteError`` when the loss or
    gradient turns non-finite, ``distributed.WorkdirLockedError`` when another run holds the
    workdir.
    """
    return TrainLoop(config, workdir, **hooks).run()
