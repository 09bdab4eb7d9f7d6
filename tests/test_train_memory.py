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
