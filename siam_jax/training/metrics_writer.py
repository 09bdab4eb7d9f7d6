"""Metrics sinks: ``WORKDIR/metrics.jsonl`` (one JSON object a line, with ``step``) and TensorBoard
event files (``WORKDIR/tensorboard``, via tensorboardX so TensorFlow stays out of the trainer).

Only process 0 writes. Each line is appended and flushed at once, so a killed run loses nothing it
already logged. Each run first writes a start row ``{"step": S, "event": "start"}`` (S: the step
it starts from); after a restart the steps since the last checkpoint appear again, and readers
drop the old rows from the resume step on (``read_metrics``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import jax
import numpy as np

EVENT = "event"  # key of a row that is not metrics (the start row of a run)


def _scalar(v):
    v = np.asarray(v)
    if v.dtype == bool:
        return bool(v)
    if np.issubdtype(v.dtype, np.integer):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else repr(f)  # JSON has no NaN/inf literals


class MetricsWriter:
    def __init__(self, workdir: str, *, tensorboard: bool = True):
        self.active = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if self.active:
            os.makedirs(workdir, exist_ok=True)
            self._file = open(self.path, "a")
            if tensorboard:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, metrics: Mapping[str, object], prefix: str = "") -> None:
        if not self.active:
            return
        row = {"step": int(step)}
        row.update({f"{prefix}{k}": _scalar(v) for k, v in metrics.items()})
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, int(step))
            self._tb.flush()

    def mark_start(self, step: int) -> None:
        """The start row of a run (or a resumed run) at ``step``; not a metric."""
        if self.active:
            self._file.write(json.dumps({"step": int(step), EVENT: "start"}) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self.active:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def read_metrics(path: str) -> dict[int, dict]:
    """``{step: row}`` of a metrics.jsonl, merged across restarts.

    Rows of one run at one step (a training row and a validation row) are merged. A resumed run
    replaces the old rows from its resume step on: a start row at step S (``mark_start``) drops
    every earlier row after S; in files without start rows, a row whose step is below the
    previous row's begins a new run at that step (its older rows from that step on are dropped).
    """
    rows: dict[int, dict] = {}
    previous = None
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            step = int(row["step"])
            if row.get(EVENT) == "start":
                rows = {s: r for s, r in rows.items() if s <= step}
                previous = step
                continue
            if previous is not None and step < previous:
                rows = {s: r for s, r in rows.items() if s < step}
            rows.setdefault(step, {}).update(row)
            previous = step
    return rows


class Progress:
    """A one-line progress report: step, loss, images/s and the ETA."""

    def __init__(self, total_steps: int, start_step: int):
        self.total = int(total_steps)
        self.start_step = int(start_step)
        self.t0 = time.perf_counter()

    def line(self, step: int, loss: float, images_per_sec: float) -> str:
        done = step - self.start_step
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(done, 1) * (self.total - step)
        return (
            f"step {step}/{self.total} ({100.0 * step / max(self.total, 1):.1f}%) "
            f"loss {loss:.4f} {images_per_sec:.1f} img/s "
            f"elapsed {_hms(elapsed)} eta {_hms(eta)}"
        )


def _hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
