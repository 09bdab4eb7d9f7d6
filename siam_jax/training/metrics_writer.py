"""Metrics sinks: ``WORKDIR/metrics.jsonl`` (one JSON object a line, with ``step``) and TensorBoard
event files (``WORKDIR/tensorboard``, via tensorboardX so TensorFlow stays out of the trainer).

Only process 0 writes. Each line is appended and flushed at once, so a killed run loses nothing it
already logged; after a restart the steps since the last checkpoint appear again (readers keep the
last line of each step, see ``read_metrics``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import jax
import numpy as np


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

    def close(self) -> None:
        if self.active:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def read_metrics(path: str) -> dict[int, dict]:
    """``{step: row}`` of a metrics.jsonl, the last row of each step winning (after resumes)."""
    rows: dict[int, dict] = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.setdefault(row["step"], {}).update(row)
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
