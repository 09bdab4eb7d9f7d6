"""Three overlapping stages with bounded queues: decode -> model -> render and write.

The producer (decoding) and the consumer (rendering, encoding, file writes) run in their own
threads; the model runs in the calling thread (JAX dispatch from one thread, and the state of
the tracker and the smoother stays sequential). The queues hold at most ``maxsize`` items, so
memory stays bounded when one stage is slower. FFmpeg decoding/encoding, numpy, PIL and XLA
release the GIL, so the stages overlap on a multi-core machine. An error in any stage stops
the others and is re-raised in the caller with its own traceback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

_END = object()


class _Stop(Exception):
    pass


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def run_pipeline(
    produce: Iterable[Any],
    transform: Callable[[Any], Any],
    consume: Callable[[Any], None],
    *,
    maxsize: int = 4,
) -> None:
    """``consume(transform(x))`` for every ``x`` of ``produce``, in order, three stages at once."""
    if maxsize < 1:
        raise ValueError(f"queue size must be >= 1, got {maxsize}")
    q_in: queue.Queue = queue.Queue(maxsize)
    q_out: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(fn):
        def run():
            try:
                fn()
            except _Stop:
                pass
            except BaseException as e:  # re-raised in the caller below
                errors.append(e)
                stop.set()

        return run

    def producer():
        for item in produce:
            _put(q_in, item, stop)
        _put(q_in, _END, stop)

    def consumer():
        while (item := _get(q_out, stop)) is not _END:
            consume(item)

    threads = [threading.Thread(target=guarded(f), daemon=True) for f in (producer, consumer)]
    for t in threads:
        t.start()

    def middle():
        while (item := _get(q_in, stop)) is not _END:
            _put(q_out, transform(item), stop)
        _put(q_out, _END, stop)

    guarded(middle)()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
