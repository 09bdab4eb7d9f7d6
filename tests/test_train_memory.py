"""benchmark.py --train_memory on a tiny SIAM (compile only): the peak grows with the batch and
its increments are equal (affine), FLOPs grow linearly, remat does not raise temp memory, and the
largest batch under a small fake budget is consistent with compiles at it and one row more."""

from __future__ import annotations

import pytest

from siam_jax.benchmarking import train_memory as tm


@pytest.fixture(scope="module")
def tiny():
    from configs import tiny as tiny_cfg
    from tests.test_train_helpers import FakeBody

    config = tiny_cfg.get_config()
    config.model.input_size = 32
    config.model.backbone.stem_width = 8
    config.model.max_instances = 2
    return config, FakeBody.make()


@pytest.fixture(scope="module")
def plain(tiny):
    """The probe without remat, shared (each compile of the tiny step takes tens of seconds)."""
    config, body = tiny
    return tm.StepProbe(config, body, remat=False)


def test_peak_flops_and_largest_batch(plain):
    probe = plain
    rows = {b: probe(b) for b in (1, 2, 3)}
    peaks = [rows[b]["peak_bytes"] for b in (1, 2, 3)]
    assert peaks[0] < peaks[1] < peaks[2]
    for r in rows.values():  # the peak is the documented sum of memory_analysis() fields
        assert r["peak_bytes"] == (
            r["argument_bytes"] + r["output_bytes"] + r["temp_bytes"] - r["alias_bytes"]
        )
    f1, f2, f3 = (rows[b]["flops"] for b in (1, 2, 3))
    # ~linear: equal increments within 5 % (2.7 % apart on this tiny model: per-row reductions)
    assert f2 > f1 and f3 - f2 == pytest.approx(f2 - f1, rel=0.05)
    # A budget halfway between the peaks at 2 and 3: the fit on (1, 2) must land on 2, and the
    # compiles at 2 and 3 (cached) bracket the budget.
    budget = peaks[1] + 0.5 * (peaks[2] - peaks[1])
    fit = tm.largest_batch(probe, 1, 2, budget)
    b = fit["largest"]
    assert fit["verified"] and probe.peak(b) <= budget < probe.peak(b + 1)


def test_remat_does_not_raise_temp_memory(tiny, plain):
    config, body = tiny
    remat = tm.StepProbe(config, body, remat=True)(2)
    assert remat["temp_bytes"] <= plain(2)["temp_bytes"]
    assert remat["argument_bytes"] == plain(2)["argument_bytes"]  # the same state and batch


def test_cpu_remat_note_holds_for_xla_cpu():
    """CPU_REMAT_NOTE's reproduction: a 16-layer MLP remat'd in 4 segments needs more CPU temp
    memory than without remat (the recomputation is scheduled early). When XLA's CPU backend
    learns to schedule remat, this fails: then measure remat on the CPU too."""
    import jax
    import jax.numpy as jnp

    def segment(ws, x):
        for w in ws:
            x = jnp.tanh(x @ w)
        return x

    def temp(remat):
        f = jax.checkpoint(segment) if remat else segment

        def loss(ws, x):
            for i in range(0, 16, 4):
                x = f(ws[i : i + 4], x)
            return jnp.sum(x**2)

        ws, x = [jnp.zeros((512, 512))] * 16, jnp.zeros((4096, 512))
        return jax.jit(jax.grad(loss)).lower(ws, x).compile().memory_analysis().temp_size_in_bytes

    if jax.default_backend() != "cpu":
        pytest.skip("the note is about XLA's CPU backend")
    assert temp(True) >= temp(False)
    assert tm.remat_options("cpu") == (False,) and tm.remat_options("gpu") == (False, True)


def test_cpu_report_table_says_why_remat_is_not_measured():
    row = {"peak_bytes": 11.5e9, "flops": 2.3e12}
    report = {
        "machine": "test", "backend": "cpu", "memory_fields": tm.MEMORY_FIELDS,
        "budget_bytes": tm.BUDGET_BYTES, "note": tm.BACKEND_NOTE,
        "rows": {"w32_frame": {
            "per_device_batch": 8, "flops_per_step": 2.3e12,
            "no_remat": {"at_batch": row, "largest_batch": {"largest": 58, "verified": True}},
            "remat": {"not_measured": tm.CPU_REMAT_NOTE},
        }},
    }  # fmt: skip
    md = tm.markdown_table(report, ("w32_frame", "w48_frame"))
    assert "| w32_frame | 8 | 11.5 | not on CPU (note) | 2300 | 58 | not on CPU (note) |" in md
    assert tm.CPU_REMAT_NOTE in md and "| w48_frame | not measured in this run |" in md


def test_compile_only_flag_is_added_once(monkeypatch):
    import os

    from jax._src import xla_bridge

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    started = xla_bridge.backends_are_initialized()
    assert tm.compile_only_flags() == (not started)  # takes effect only before the backend
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_cpu_enable_fast_math=false",
        tm.COMPILE_ONLY_XLA_FLAG,
    ]
    tm.compile_only_flags()
    assert os.environ["XLA_FLAGS"].count("xla_backend_optimization_level") == 1
