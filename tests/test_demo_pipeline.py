"""The demo's three-stage pipeline: order, bounded queues, errors from any stage."""

import threading
import time

import pytest

from siam_jax.inference.pipeline import run_pipeline


def test_order_is_kept_and_stages_overlap():
    out, active, peak = [], [0], [0]
    lock = threading.Lock()

    def slow(fn):
        def run(x):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.01)
            with lock:
                active[0] -= 1
            return fn(x)

        return run

    def produce():
        for i in range(20):
            slow(lambda x: x)(i)
            yield i

    run_pipeline(produce(), slow(lambda x: 2 * x), slow(out.append), maxsize=2)
    assert out == [2 * i for i in range(20)]
    assert peak[0] >= 2  # at least two stages were busy at the same time


def test_producer_is_bounded_by_the_queue():
    produced, consumed = [0], [0]
    ahead = []

    def produce():
        for i in range(30):
            produced[0] += 1
            ahead.append(produced[0] - consumed[0])
            yield i

    def consume(x):
        time.sleep(0.005)
        consumed[0] += 1

    run_pipeline(produce(), lambda x: x, consume, maxsize=3)
    # At most: 3 waiting for the model, 1 in the model, 3 waiting for the writer, 1 writing,
    # and the one being produced.
    assert max(ahead) <= 3 + 1 + 3 + 1 + 1


@pytest.mark.parametrize("stage", ["produce", "transform", "consume"])
def test_an_error_in_any_stage_is_raised_in_the_caller(stage):
    def produce():
        for i in range(100):
            if stage == "produce" and i == 5:
                raise ValueError("bad frame 5")
            yield i

    def transform(x):
        if stage == "transform" and x == 5:
            raise ValueError("bad frame 5")
        return x

    def consume(x):
        if stage == "consume" and x == 5:
            raise ValueError("bad frame 5")

    with pytest.raises(ValueError, match="bad frame 5"):
        run_pipeline(produce(), transform, consume, maxsize=2)
    assert threading.active_count() < 10  # no stage thread left running
