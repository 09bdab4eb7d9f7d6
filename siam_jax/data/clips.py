"""Clips for the video setting: T consecutive frames of one ``sequence_id``.

TFDS shuffles records by key when it writes a dataset, so record order says nothing about time.
The index reads every record's ``sequence_id`` and ``frame_index`` once (image bytes not decoded),
sorts each sequence by frame index, and lists every window of T frames inside one sequence.

Only real videos are cut into clips. An image dataset (COCO, AGORA rows, ...: ``video=False``)
feeds a video config as *static clips*: each record repeated T times, one augmentation draw for
the clip, so a clip never strings unrelated images together (docs/data.md "Mixture").

Building the index reads every record, so it is built once per (dataset, split, clip_len,
stride) in a process and reused (``cached_clips``): the pipeline, and with it every evaluation
of the training loop, asks ``cached_clips`` (issue 20).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

import numpy as np
from jaxtyping import Int


def clip_windows(
    sequence_ids: Sequence[object],
    frame_indices: Sequence[int],
    clip_len: int,
    *,
    stride: int = 1,
) -> Int[np.ndarray, "c t"]:
    """Record indices of every clip: ``[num_clips clip_len]``.

    A clip is ``clip_len`` records of one sequence with strictly increasing ``frame_index`` that
    are neighbours in that sequence's frame order. ``stride`` spaces clip starts (1 for training,
    ``clip_len`` for non-overlapping evaluation clips). Clips are listed by sequence (sorted by id)
    then start frame, so the list is deterministic.
    """
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    if len(sequence_ids) != len(frame_indices):
        raise ValueError(f"{len(sequence_ids)} sequence ids but {len(frame_indices)} frame indices")
    by_seq: dict[object, list[tuple[int, int]]] = collections.defaultdict(list)
    for rec, (seq, frame) in enumerate(zip(sequence_ids, frame_indices, strict=True)):
        by_seq[seq].append((int(frame), rec))
    clips = []
    for seq in sorted(by_seq, key=str):
        frames = sorted(by_seq[seq])
        fidx = [f for f, _ in frames]
        recs = [r for _, r in frames]
        for dup in range(1, len(fidx)):
            if fidx[dup] == fidx[dup - 1]:
                raise ValueError(f"sequence {seq!r} has frame_index {fidx[dup]} twice")
        for start in range(0, len(recs) - clip_len + 1, stride):
            clips.append(recs[start : start + clip_len])
    return np.asarray(clips, np.int64).reshape(-1, clip_len)


def source_clips(key_source, clip_len: int, *, stride: int = 1) -> Int[np.ndarray, "c t"]:
    """Clip index of a ``tfds.data_source`` (frames are their own clips when clip_len is 1).

    ``key_source`` is best opened with ``decoders={"image": tfds.decode.SkipDecoding()}`` so that
    indexing does not decode images (``mixture.open_source`` does).
    """
    n = len(key_source)
    if clip_len == 1:
        return np.arange(n, dtype=np.int64)[:, None]
    seq_ids, frames = [], []
    for i in range(n):
        rec = key_source[i]
        seq_ids.append(rec["sequence_id"])
        frames.append(int(rec["frame_index"]))
    return clip_windows(seq_ids, frames, clip_len, stride=stride)


def static_clips(num_records: int, clip_len: int) -> Int[np.ndarray, "c t"]:
    """Clips of an image dataset: record r repeated ``clip_len`` times, one clip per record."""
    return np.repeat(np.arange(num_records, dtype=np.int64)[:, None], clip_len, axis=1)


_CACHE: dict[tuple, np.ndarray] = {}
_CACHE_LOCK = threading.Lock()
_BUILDS = [0]  # how many indices were built (not served from the cache)


def cached_clips(
    key: tuple, key_source_fn, num_records: int, clip_len: int, *, stride: int, video: bool
) -> Int[np.ndarray, "c t"]:
    """The clip index of one dataset split, built once per process and reused.

    ``key`` names the dataset (data_dir, TFDS name, split); with ``num_records``, ``clip_len``,
    ``stride`` and ``video`` it keys the cache, so a rebuilt dataset of another size is indexed
    again. ``key_source_fn()`` opens the metadata source (images not decoded) only when the index
    must be built. The returned array is read-only (shared between callers).
    """
    full_key = (*key, int(num_records), int(clip_len), int(stride), bool(video))
    with _CACHE_LOCK:
        hit = _CACHE.get(full_key)
    if hit is not None:
        return hit
    _BUILDS[0] += 1
    if not video:
        clips = static_clips(num_records, clip_len)
    else:
        clips = source_clips(key_source_fn(), clip_len, stride=stride)
    clips.setflags(write=False)
    with _CACHE_LOCK:
        _CACHE[full_key] = clips
    return clips


def clear_cache() -> None:
    """Forgets every cached clip index (tests; a process that rebuilds datasets in place)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def build_count() -> int:
    """How many clip indices this process built (tests check that evaluation reuses them)."""
    return _BUILDS[0]
