"""An in-memory cache of decoded records for small training sets (``config.data.cache_decoded``).

A TFDS data source parses the record and decodes its PNG on every read: about 1.4 ms of the 3.4
ms a quickstart example costs on one core (measured 2026-12-07, docs/choices.md "Quickstart step
profile"), and the quickstart reads each of its 1600 records about 30 times. ``DecodedCache``
keeps each record's decoded numpy tree after its first read. Memory: the decoded size of the
whole split (1600 x 128 px x 3 + labels: about 100 MB for the quickstart), so it is for small
sets only; the poster configs leave it off.

The cached arrays are made read-only: the input pipeline never writes into a record, and a
change that did would fail loudly instead of corrupting every later epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np


def _frozen(tree):
    if isinstance(tree, Mapping):
        return {k: _frozen(v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray):
        tree.setflags(write=False)
        return tree
    return tree


class DecodedCache(Sequence):
    """``source[i]`` decoded once, then served from memory (thread-safe; a record read by two
    threads at once may be decoded twice, never stored half-done)."""

    def __init__(self, source):
        self.source = source
        self._cache: dict[int, dict] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        index = int(index)
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        example = _frozen(self.source[index])
        with self._lock:
            return self._cache.setdefault(index, example)

    def __repr__(self) -> str:
        return f"DecodedCache({self.source!r}, {len(self._cache)} of {len(self)} cached)"
