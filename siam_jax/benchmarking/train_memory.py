"""Per-device memory and FLOPs of the training step, known before renting a GPU (issue 15).

    python benchmark.py --train_memory --out train_memory.json

For each config, the training step the trainer jits (``siam_jax.training.step.make_train_step``,
with the config's optimizer, EMA and accumulation) is lowered and compiled on abstract inputs
(``jax.ShapeDtypeStruct``: no weights, no data, nothing run) on a one-device ``('data',)`` mesh
at the per-device batch: with data parallelism each device holds the replicated state and its
own rows, so one device at the per-device batch is what every device of the cluster holds
(less the all-reduce buffers, which are of the gradients' size).

Per compile, ``memory_analysis()`` gives ``argument + output + temp - alias`` bytes (the
donated state is aliased to the new state, so it counts once): the peak this module reports.
``cost_analysis()['flops']`` gives the FLOPs of one step at that batch.

The largest batch that fits a budget is not searched with many compiles: memory is close to
affine in the batch (the state is fixed, activations grow with the rows), so two compiles fit
``m(b) = a + s b``, the fit predicts ``b* = floor((budget - a) / s)``, one compile at ``b*``
verifies it, and one more (a secant through the two nearest points) adjusts once if it
overshoots (docs/choices.md, "Largest batch from an affine fit").

The figures are those of the backend that compiles (``jax.default_backend()``, recorded in the
report). XLA's CPU and GPU compilers assign buffers differently (fusion, convolution
algorithms and their workspaces, rematerialisation passes), so CPU figures are an estimate of a
GPU's, not its measurement; run this on the GPU to get its own.

Backbone remat is measured on accelerators only. XLA's CPU pipeline schedules a remat'd
segment's recomputation without regard to memory (as early as its inputs allow), so on the CPU
the recomputed activations live as long as the originals and remat never lowers the peak
(``CPU_REMAT_NOTE``; docs/choices.md "Remat on the CPU backend" has the reproduction). A CPU run
records why instead of spending three compiles per config on a figure that means nothing.

Nothing is run, so the LLVM code generation is not worth optimising: ``compile_only_flags()``
sets ``--xla_backend_optimization_level=0`` (before the backend starts), which cut the CPU
compile of the quickstart's step by about 30% with the same memory and FLOPs figures (buffer
assignment is decided on the HLO, before code generation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import jax
import ml_collections
import numpy as np
from flax import nnx

from siam_jax.benchmarking.timing import compiled_flops

CPU_REMAT_NOTE = (
    "not measured on the CPU backend: XLA's CPU scheduler places a remat'd segment's "
    "recomputation as early as its inputs allow, so remat never lowers a CPU peak (a 16-layer "
    "MLP remat'd in 4 segments: 168 MB of temp against 143 MB without); run on a GPU"
)
# A compile-only run: no code is executed, so the backend's code generation needs no optimising.
COMPILE_ONLY_XLA_FLAG = "--xla_backend_optimization_level=0"


def compile_only_flags() -> bool:
    """Adds ``COMPILE_ONLY_XLA_FLAG`` to ``XLA_FLAGS`` for this process; True when it takes effect
    (XLA reads the variable when the first backend starts, so it must come before that)."""
    import os

    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {COMPILE_ONLY_XLA_FLAG}".strip()
    return not xla_bridge.backends_are_initialized()


def remat_options(backend: str) -> tuple[bool, ...]:
    """Backbone remat settings measured on ``backend``: both on accelerators, none on the CPU
    (``CPU_REMAT_NOTE``)."""
    return (False,) if backend == "cpu" else (False, True)


# The budget of "fits in 80 GB": 80e9 bytes (decimal GB, 74.5 GiB): below an 80 GiB device's
# memory, leaving room for the runtime (CUDA context, cuDNN workspaces, fragmentation).
BUDGET_BYTES = 80 * 10**9
MEMORY_FIELDS = "argument_size_in_bytes + output_size_in_bytes + temp_size_in_bytes " \
    "- alias_size_in_bytes"  # fmt: skip


def batch_spec(config, batch: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Abstract training batch of ``batch`` rows (the keys ``step.TRAIN_KEYS``, the shapes and
    dtypes of the input pipeline: ``siam_jax.data.schema`` per-person fields, ``targets``)."""
    from siam_jax.data import schema
    from siam_jax.models.tokens import FEATURE_STRIDE
    from siam_jax.training import step as step_lib

    m = config.model
    t, k, size = int(m.clip_len), int(m.max_instances), int(m.input_size)
    cells = size // FEATURE_STRIDE
    person = {**schema.PERSON_FIELDS, **schema.KEYPOINT_FIELDS}
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        "image": ((size, size, 3), "float32"),
        "intrinsics": ((3, 3), "float32"),
        "center_heatmap": ((cells, cells), "float32"),
        "center_ignore": ((cells, cells), "bool"),
        "all_persons_annotated": ((), "bool"),
    }
    per_slot = {"center_cells": ((2,), "int32"), "person_valid": ((), "bool"), **person}
    out = {}
    for key in step_lib.TRAIN_KEYS:
        if key in shapes:
            tail, dtype = shapes[key]
            shape = (batch, t, *tail)
        elif key in per_slot:
            tail, dtype = per_slot[key]
            shape = (batch, t, k, *tail)
        else:
            raise KeyError(f"train_memory.batch_spec has no shape for batch key {key!r}")
        out[key] = jax.ShapeDtypeStruct(shape, np.dtype(dtype))
    return out


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


def compile_train_step(config, batch: int, body_model, build_model=None):
    """The trainer's jitted train step of ``config`` compiled (not run) at ``batch`` rows per
    device on a one-device mesh; returns the compiled executable. ``build_model(config, rngs)``:
    the model (default: ``models.build_model`` of ``config.model`` around ``body_model``, as the
    trainer's ``default_build_model``)."""
    from siam_jax import models
    from siam_jax.training import state as state_lib
    from siam_jax.training import step as step_lib

    if build_model is None:

        def build_model(cfg, rngs):
            return models.build_model(cfg.model, rngs=rngs, body_model=body_model)

    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    tx = state_lib.make_optimizer(config)
    box = {}

    def init():  # as TrainLoop._init_state; the graph definitions come out of the same trace
        model = build_model(config, nnx.Rngs(0))
        box["defs"], st = state_lib.create_train_state(
            model, tx, ema=state_lib.ema_decay(config) > 0
        )
        return st

    abstract_state = jax.eval_shape(init)
    defs = box["defs"]
    body = _abstract(state_lib.body_state(defs, body_model))
    step = step_lib.make_train_step(config, defs, tx, mesh, state_lib.make_schedule(config))
    with jax.set_mesh(mesh):
        lowered = step.lower(abstract_state, batch_spec(config, batch), _abstract(body_model), body)
        return lowered.compile()


def memory_of(compiled) -> dict[str, int]:
    """The fields of ``compiled.memory_analysis()`` and their peak (``MEMORY_FIELDS``)."""
    stats = compiled.memory_analysis()
    names = ("argument", "output", "temp", "alias", "generated_code")
    out = {f"{n}_bytes": int(getattr(stats, f"{n}_size_in_bytes")) for n in names}
    out["peak_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"] - out["alias_bytes"]
    )
    return out


def with_remat(config, remat: bool):
    """A copy of ``config`` with ``model.backbone.remat = remat``."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model.backbone.remat = bool(remat)
    return cfg


class StepProbe:
    """Compiles the step of one config at given batches and remembers each compile's figures
    (``seen``: batch -> figures); ``on_compile(probe)`` is called after each new compile."""

    def __init__(self, config, body_model, remat: bool, *, build_model=None, on_compile=None):
        self.config = with_remat(config, remat)
        self.remat = bool(remat)
        self.body_model = body_model
        self.build_model = build_model
        self.on_compile = on_compile
        self.seen: dict[int, dict] = {}

    def __call__(self, batch: int) -> dict:
        if batch not in self.seen:
            start = time.perf_counter()
            compiled = compile_train_step(self.config, batch, self.body_model, self.build_model)
            row = memory_of(compiled)
            row["flops"] = compiled_flops(compiled)
            row["compile_s"] = time.perf_counter() - start
            self.seen[batch] = row
            print(f"compiled batch {batch} (remat {self.remat}): {row}", flush=True)
            if self.on_compile is not None:
                self.on_compile(self)
        return self.seen[batch]

    def peak(self, batch: int) -> int:
        return self(batch)["peak_bytes"]


def _predict(b0: int, m0: float, b1: int, m1: float, budget: float) -> int:
    """Largest integer batch under ``budget`` on the line through (b0, m0), (b1, m1)."""
    slope = (m1 - m0) / (b1 - b0)
    if slope <= 0:
        raise ValueError(f"memory does not grow with the batch ({m0} B at {b0}, {m1} B at {b1})")
    return math.floor(b0 + (budget - m0) / slope)


def largest_batch(probe: StepProbe, b0: int, b1: int, budget: float) -> dict:
    """The largest per-device batch whose peak fits ``budget`` (module doc): fit on ``b0`` and
    ``b1``, one verifying compile at the prediction, one adjustment if it overshoots."""
    m0, m1 = probe.peak(b0), probe.peak(b1)
    slope = (m1 - m0) / (b1 - b0)
    predicted = _predict(b0, m0, b1, m1, budget)
    out = {
        "fit_batches": [b0, b1],
        "fit_bytes_per_row": slope,
        "fit_fixed_bytes": m0 - slope * b0,
        "predicted": predicted,
    }
    batch = predicted
    if batch >= 1 and probe.peak(batch) > budget:  # overshoot: secant through the nearest two
        near = max((b for b in probe.seen if b < batch), default=b0)
        batch = _predict(near, probe.peak(near), batch, probe.peak(batch), budget)
        out["adjusted"] = batch
    if batch < 1:
        out.update(largest=0, largest_peak_bytes=None, verified=probe.peak(1) > budget)
        return out
    fits = probe.peak(batch) <= budget
    if not fits:  # still over after the one adjustment: the largest batch known to fit
        fitting = [b for b, r in probe.seen.items() if r["peak_bytes"] <= budget]
        batch = max(fitting, default=0)
    out.update(
        largest=batch,
        largest_peak_bytes=probe.peak(batch) if batch else None,
        verified=bool(batch),
    )
    return out


def measure_config(
    config,
    per_device_batch: int,
    body_model,
    *,
    budget: float = BUDGET_BYTES,
    on_update=None,
    remat: tuple[bool, ...] = (False, True),
) -> dict:
    """One config's row: peak memory and FLOPs at ``per_device_batch`` and the largest
    per-device batch under ``budget``, for each backbone remat setting in ``remat`` (one left
    out is recorded with ``CPU_REMAT_NOTE``). ``on_update(row)`` is called after each compile
    with the row so far (``complete`` False until the end), so a run stopped early keeps what
    it measured."""
    row: dict = {"per_device_batch": per_device_batch, "budget_bytes": budget, "complete": False}
    if True not in remat:
        row["remat"] = {"not_measured": CPU_REMAT_NOTE}

    def update(probe: StepProbe) -> None:
        entry = row.setdefault("remat" if probe.remat else "no_remat", {})
        entry["compiles"] = {str(b): r for b, r in sorted(probe.seen.items())}
        if per_device_batch in probe.seen:
            entry["at_batch"] = dict(probe.seen[per_device_batch])
        if not probe.remat and "at_batch" in entry:
            row["flops_per_step"] = entry["at_batch"]["flops"]
        if on_update is not None:
            on_update(row)

    for setting in remat:
        probe = StepProbe(config, body_model, setting, on_compile=update)
        b0 = per_device_batch
        fit = largest_batch(probe, b0, 2 * b0, budget)
        row["remat" if setting else "no_remat"]["largest_batch"] = fit
    row["complete"] = True
    if on_update is not None:
        on_update(row)
    return row


def run(
    configs: Mapping[str, ml_collections.ConfigDict],
    per_device_batches: Mapping[str, int],
    *,
    budget: float = BUDGET_BYTES,
    on_row=None,
) -> dict:
    """The report over ``configs`` (name -> config, each compiled at ``per_device_batches``);
    ``on_row(report)`` after each compile (the partial report: rows with ``complete`` False)."""
    from siam_jax import models
    from siam_jax.benchmarking.suite import machine_description

    report = {
        "machine": machine_description(),
        "backend": jax.default_backend(),
        "memory_fields": MEMORY_FIELDS,
        "budget_bytes": budget,
        "note": BACKEND_NOTE,
        "rows": {},
    }
    for name, config in configs.items():
        body_model = models.load_body_model(config.model)
        start = time.perf_counter()
        extra = {
            "compute_dtype": str(config.model.compute_dtype),
            "input_size": int(config.model.input_size),
            "clip_len": int(config.model.clip_len),
            "body_slots_per_device": int(per_device_batches[name])
            * int(config.model.clip_len)
            * int(config.model.max_instances),
        }

        def update(row, name=name, extra=extra, start=start):
            report["rows"][name] = {**row, **extra, "wall_s": time.perf_counter() - start}
            if on_row is not None:
                on_row(report)

        measure_config(
            config,
            int(per_device_batches[name]),
            body_model,
            budget=budget,
            on_update=update,
            remat=remat_options(report["backend"]),
        )
    return report


BACKEND_NOTE = (
    "memory_analysis() and cost_analysis() of the compiling backend's XLA; CPU figures estimate, "
    "not measure, a GPU's (different fusion, convolution algorithms and workspaces)"
)


def _gb(x) -> str:
    return "-" if x is None else f"{x / 1e9:.1f}"


def _cells(r: dict) -> list[str]:
    """Table cells of one row; what a stopped run did not reach reads "not measured"."""
    no, yes = r.get("no_remat", {}), r.get("remat", {})
    clip = int(r.get("clip_len", 1))
    frames = f" x {clip} frames" if clip > 1 else ""  # video rows: clips of clip_len frames

    def peak(entry):
        if "not_measured" in entry:
            return "not on CPU (note)"
        at = entry.get("at_batch")
        return _gb(at["peak_bytes"]) if at else "not measured"

    def largest(entry):
        if "not_measured" in entry:
            return "not on CPU (note)"
        fit = entry.get("largest_batch")
        if fit is None:
            return "not measured"
        return f"{fit['largest']}{frames}" + ("" if fit.get("verified") else " (unverified)")

    flops = r.get("flops_per_step")
    return [
        f"{r['per_device_batch']}{frames}",
        peak(no),
        peak(yes),
        "not measured" if flops is None else f"{flops / 1e9:.0f}",
        largest(no),
        largest(yes),
    ]


def markdown_table(report: dict, expected: tuple[str, ...] = ()) -> str:
    """The README table of a report; configs of ``expected`` absent from it are listed as not
    measured."""
    lines = [
        f"Compiled (not run) on {report['machine']}; backend **{report['backend']}**. Peak = "
        f"{report['memory_fields']} of `compiled.memory_analysis()`, per device; GFLOPs of "
        f"`cost_analysis()` per step and device at the per-device batch; largest batch: peak <= "
        f"{report['budget_bytes'] / 1e9:.0f} GB (affine fit, verified by a compile). "
        f"{report['note']}.",
        *(
            ["", f"Remat columns: {CPU_REMAT_NOTE}."]
            if any("not_measured" in r.get("remat", {}) for r in report["rows"].values())
            else []
        ),
        "",
        "| config | per-device batch | peak (GB) | peak, remat (GB) | GFLOPs / step "
        "| largest batch in budget | largest, remat |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["rows"].items():
        lines.append("| " + " | ".join([name, *_cells(r)]) + " |")
    for name in expected:
        if name not in report["rows"]:
            lines.append(f"| {name} | not measured in this run | | | | | |")
    return "\n".join(lines) + "\n"
