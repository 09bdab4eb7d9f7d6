"""Stable person IDs across frames for the demo.

Each frame's detections are assigned to the tracks of the previous frames by the Hungarian
algorithm (``scipy.optimize.linear_sum_assignment``) on the distance between camera-frame
translations (3D, metres), with a gate: a pair farther apart than ``max_distance`` is never
matched. Unmatched detections start new tracks; a track unseen for more than ``max_age`` frames
is dropped. The cost is 3D because image-space centres of people at different depths can cross
while their 3D positions stay apart (choice recorded in docs/choices.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float
from scipy.optimize import linear_sum_assignment


@dataclasses.dataclass
class _Track:
    track_id: int
    position: np.ndarray  # [3] metres, camera frame
    last_seen: int


@dataclasses.dataclass
class Tracker:
    """Assigns persistent integer IDs to per-frame detections.

    Args:
      max_distance: largest 3D displacement (metres) between consecutive sightings of one person.
      max_age: frames a track survives without a detection.
    """

    max_distance: float = 0.75
    max_age: int = 15
    _tracks: list[_Track] = dataclasses.field(default_factory=list)
    _next_id: int = 0
    _frame: int = -1

    def update(self, positions: Float[np.ndarray, "n 3"]) -> np.ndarray:
        """Returns the IDs ``[n]`` (int) of this frame's detections, in their order."""
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        self._frame += 1
        self._tracks = [t for t in self._tracks if self._frame - t.last_seen <= self.max_age]
        ids = np.full(len(positions), -1, dtype=np.int64)
        if self._tracks and len(positions):
            previous = np.stack([t.position for t in self._tracks])
            cost = np.linalg.norm(positions[:, None, :] - previous[None, :, :], axis=-1)
            gated = np.where(cost <= self.max_distance, cost, 1e6)
            rows, cols = linear_sum_assignment(gated)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= self.max_distance:
                    track = self._tracks[c]
                    ids[r] = track.track_id
                    track.position = positions[r]
                    track.last_seen = self._frame
        for r in np.flatnonzero(ids < 0):
            ids[r] = self._next_id
            self._tracks.append(_Track(self._next_id, positions[r], self._frame))
            self._next_id += 1
        return ids
