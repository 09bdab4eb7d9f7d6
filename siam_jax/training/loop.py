"""The SIAM trainer, read top to bottom (big_vision style): distributed setup, mesh, input, model
and optimizer, checkpoint/resume, the compiled steps, evaluation, the loop.

``train_and_evaluate(config, workdir)`` is what ``train.py`` calls. The keyword hooks (model,
iterators, body model) exist for tests and experiments; by default everything comes from the
config.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import jax
import numpy as np
from absl import logging
from flax import nnx

from siam_jax import checkpoints
from siam_jax.training import metrics_writer as mw
from siam_jax.training import state as state_lib
from siam_jax.training import step as step_lib


class NonFiniteError(RuntimeError):
    """The loss or the gradient turned non-finite; the run stopped without saving that step."""


# ================================================================================= distributed
def maybe_initialize_distributed() -> None:
    """``jax.distributed.initialize`` when the environment names a multi-process job.

    Reads ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (the names
    ``jax.distributed`` itself uses); must run before anything touches a JAX device. CPU
    processes talk through gloo collectives (jax config ``jax_cpu_collectives_implementation``).
    """
    env = os.environ
    if "JAX_COORDINATOR_ADDRESS" not in env or int(env.get("JAX_NUM_PROCESSES", "1")) <= 1:
        return
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(env["JAX_NUM_PROCESSES"]),
        process_id=int(env["JAX_PROCESS_ID"]),
    )


def validate_config(config) -> None:
    """Clear errors, naming the key, for values the trainer cannot run with."""
    n = jax.device_count()
    if int(config.total_steps) <= 0:
        raise ValueError(f"config.total_steps must be positive, got {config.total_steps}")
    if int(config.batch_size) % n:
        raise ValueError(
            f"config.batch_size={config.batch_size} is not divisible by the {n} devices "
            "(the batch is split evenly over the 'data' mesh axis)"
        )
    for key in ("log_every_steps", "checkpoint_every_steps", "eval_every_steps"):
        if int(config[key]) <= 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}")
    step_lib.compute_dtype_of(config)


# ================================================================================= defaults
def default_build_model(body_model) -> Callable:
    """``build(config, rngs)`` of the SIAM model of the config, around the given body model."""
    from siam_jax import models

    def build(config, rngs: nnx.Rngs) -> nnx.Module:
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


def evaluate(config, state, eval_step, body_model, mesh, make_eval_iterator) -> dict[str, float]:
    """MPJPE, PA-MPJPE, PVE (mm, pelvis-aligned) over the held-out split; one pass."""
    pi, pc = jax.process_index(), jax.process_count()
    sums = {"mpjpe": 0.0, "pa_mpjpe": 0.0, "pve": 0.0}
    counts = {"mpjpe": 0, "pa_mpjpe": 0, "pve": 0}
    mask_of = {"mpjpe": "mask_3d", "pa_mpjpe": "mask_3d", "pve": "mask_smpl"}
    for batch in make_eval_iterator(config, pi, pc):
        out = jax.device_get(
            eval_step(state, step_lib.shard_batch(batch, mesh, step_lib.EVAL_KEYS), body_model)
        )
        for name in sums:
            m = np.asarray(out[mask_of[name]], bool)
            sums[name] += float(np.sum(np.asarray(out[name], np.float64)[m]))
            counts[name] += int(m.sum())
    # metres -> millimetres only here, in the report (DESIGN.md conventions).
    result = {f"val_{k}_mm": 1000.0 * sums[k] / max(counts[k], 1) for k in sums}
    result["val_persons"] = counts["mpjpe"]
    return result


class _Preemption:
    """SIGTERM sets a flag; the loop saves a checkpoint at the next step boundary and exits."""

    def __init__(self):
        self.requested = False
        self._previous = None
        self._installed = False

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        except ValueError:  # not the main thread: no handler (tests driving the loop in threads)
            self._previous = None
        return self

    def rearm(self) -> None:
        """Installs the handler again. Libraries loaded lazily during training (TensorFlow's C++
        absl failure-signal handler, loaded with the first TFDS read) take SIGTERM over at the C
        level, where Python's ``signal.getsignal`` cannot see it; one syscall per step."""
        if self._installed:
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        logging.warning("SIGTERM: saving a checkpoint and exiting")
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


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
def train_and_evaluate(
    config,
    workdir: str,
    *,
    build_model: Callable | None = None,
    body_model=None,
    make_train_iterator: Callable | None = None,
    make_eval_iterator: Callable | None = None,
) -> dict[str, float]:
    """Trains ``config`` in ``workdir`` (resuming there if it holds checkpoints), evaluates.

    Returns the last validation metrics (``val_mpjpe_mm``, ``val_pa_mpjpe_mm``, ``val_pve_mm``)
    and ``step``. Raises ``NonFiniteError`` when the loss or gradient turns non-finite.
    """
    # ----------------------------------------------------------------------- logging, hosts
    t_start = time.perf_counter()
    maybe_initialize_distributed()
    validate_config(config)
    make_train_iterator = make_train_iterator or default_train_iterator
    make_eval_iterator = make_eval_iterator or default_eval_iterator
    os.makedirs(workdir, exist_ok=True)
    pi, pc = jax.process_index(), jax.process_count()
    _say(f"siam-jax train: {jax.device_count()} devices, {pc} processes, workdir {workdir}")

    # ----------------------------------------------------------------------- quickstart data
    if config.get("quickstart", False):
        from siam_jax.training import quickstart

        quickstart.ensure_synthetic_data(config)

    # ----------------------------------------------------------------------- mesh
    mesh = step_lib.make_mesh()
    repl = step_lib.replicated(mesh)

    # ----------------------------------------------------------------------- input
    train_iter = make_train_iterator(config, pi, pc)
    if body_model is None:
        body_model = default_body_model(config)
    if build_model is None:
        build_model = default_build_model(body_model)
    body_model = _replicate(body_model, mesh)

    # ----------------------------------------------------------------------- model, optimizer
    tx = state_lib.make_optimizer(config)
    schedule = state_lib.make_schedule(config)

    graph: dict[str, state_lib.ModelDefs] = {}

    def init_state() -> state_lib.TrainState:
        model = build_model(config, nnx.Rngs(int(config.seed)))
        graph["defs"], train_state = state_lib.create_train_state(model, tx)
        return train_state

    # Shapes first (nothing allocated), then the state created already replicated (big_vision).
    # The graph definitions (static) are taken from the same trace.
    abstract_state = jax.eval_shape(init_state)
    defs = graph["defs"]
    abstract_state = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), abstract_state
    )

    # ----------------------------------------------------------------------- checkpoint, resume
    # Order: 1) this workdir's latest checkpoint (a restart), 2) config.init_checkpoint,
    # 3) PyTorch HRNet weights (config.model.backbone.pretrained), 4) from scratch.
    ckpt = checkpoints.Checkpointer(
        os.path.join(workdir, "checkpoints"), keep=int(config.keep_checkpoints)
    )
    latest = ckpt.latest_step()
    if latest is not None:
        state, data_state = ckpt.restore(latest, abstract_state)
        if data_state is not None:
            train_iter.set_state(data_state)
        _say(f"resumed from {ckpt.directory}/{latest}")
    else:
        state = jax.jit(init_state, out_shardings=repl)()
        if config.init_checkpoint:
            loaded = checkpoints.restore_params_from(config.init_checkpoint, abstract_state)
            state = state.replace(params=loaded.params, rest=loaded.rest)
            _say(f"initialised from config.init_checkpoint={config.init_checkpoint}")
        elif config.model.backbone.pretrained:
            params, rest = load_pretrained_backbone(config, build_model)
            state = state.replace(params=_replicate(params, mesh), rest=_replicate(rest, mesh))
            _say(f"backbone from {config.model.backbone.pretrained}")
        else:
            _say("initialised from scratch")
    step = int(jax.device_get(state.step))
    last_saved = latest

    # ----------------------------------------------------------------------- compiled steps
    train_step = step_lib.make_train_step(config, defs, tx, mesh, schedule)
    eval_step = step_lib.make_eval_step(config, defs, mesh)
    finite_fn = jax.jit(lambda s: state_lib.all_finite((s.params, s.rest)))

    def save(at_step: int) -> None:
        nonlocal last_saved
        if not bool(jax.device_get(finite_fn(state))):
            raise NonFiniteError(f"step {at_step}: parameters not finite; checkpoint not written")
        ckpt.save(at_step, state, data_state_at_step)
        last_saved = at_step

    # ----------------------------------------------------------------------- loop
    writer = mw.MetricsWriter(workdir)
    profiler = _Profiler(config.profile.steps, os.path.join(workdir, "profile"))
    progress = mw.Progress(config.total_steps, step)
    total = int(config.total_steps)
    images_per_step = int(config.batch_size) * int(config.model.clip_len)
    data_state_at_step = train_iter.get_state()
    last_finite_step, finite_since = step, None
    t_log, steps_since_log = time.perf_counter(), 0
    result: dict[str, float] = {}
    with jax.set_mesh(mesh), _Preemption() as preemption:
        try:
            while step < total:
                batch = next(train_iter)
                preemption.rearm()
                data_state_at_step = train_iter.get_state()
                profiler.before(step + 1)
                state, metrics = train_step(
                    state, step_lib.shard_batch(batch, mesh, step_lib.TRAIN_KEYS), body_model
                )
                step += 1
                steps_since_log += 1
                profiler.after(step, metrics)
                # The guard rail. A non-finite step leaves the state as it was (train_step keeps
                # the last finite state), so the flag is only read where something leaves the
                # device (a log row, a checkpoint, an evaluation, the end): the loop never waits
                # on the device between those, and the host prepares the next step meanwhile.
                finite_since = (
                    metrics["finite"] if finite_since is None else finite_since & metrics["finite"]
                )
                log_now = step % int(config.log_every_steps) == 0 or step == total
                save_now = step % int(config.checkpoint_every_steps) == 0 or step == total
                eval_now = step % int(config.eval_every_steps) == 0 or step == total
                if log_now or save_now or eval_now or preemption.requested:
                    if not bool(jax.device_get(finite_since)):
                        m = jax.device_get(metrics)
                        raise NonFiniteError(
                            f"non-finite loss or gradient in steps ({last_finite_step}, {step}] "
                            f"(last step: loss={float(m['loss'])}, "
                            f"l2_grads={float(m['l2_grads'])}); last good checkpoint: "
                            + (
                                f"{ckpt.directory}/{last_saved}"
                                if last_saved is not None
                                else "none"
                            )
                        )
                    last_finite_step, finite_since = step, None

                if log_now:
                    m = jax.device_get(metrics)
                    dt = time.perf_counter() - t_log
                    m.pop("finite")
                    m["step_time"] = dt / steps_since_log
                    m["images_per_sec"] = images_per_step * steps_since_log / dt
                    writer.write(step, m)
                    _say(progress.line(step, float(m["loss"]), m["images_per_sec"]))
                    t_log, steps_since_log = time.perf_counter(), 0

                if save_now:
                    save(step)
                if preemption.requested:
                    if last_saved != step:
                        save(step)
                    ckpt.wait()
                    _say(f"preempted: checkpoint {ckpt.directory}/{step} written; exiting")
                    break

                if eval_now:
                    result = evaluate(
                        config, state, eval_step, body_model, mesh, make_eval_iterator
                    )
                    writer.write(step, result)
                    _say(
                        f"step {step} validation: MPJPE {result['val_mpjpe_mm']:.1f} mm, "
                        f"PA-MPJPE {result['val_pa_mpjpe_mm']:.1f} mm, "
                        f"PVE {result['val_pve_mm']:.1f} mm ({result['val_persons']} persons)"
                    )
                    t_log = time.perf_counter()  # evaluation time is not step time
        finally:
            if profiler.active:
                jax.profiler.stop_trace()
            ckpt.close()
            writer.close()

    if not result and step >= total:  # restarted after the end: evaluate the final state
        result = evaluate(config, state, eval_step, body_model, mesh, make_eval_iterator)
    result = dict(result, step=step, wall_seconds=time.perf_counter() - t_start)
    if config.get("quickstart", False) and step >= total:
        from siam_jax.training import quickstart

        quickstart.report(config, workdir, body_model, make_eval_iterator, result)
    return result
