"""Clips for the video setting: T consecutive frames of one ``sequence_id``.

TFDS shuffles records by key when it writes a dataset, so record order says nothing about time.
The index reads every record's ``sequence_id`` and ``frame_index`` once (image bytes not decoded),
sorts each sequence by frame index, and lists every window of T frames inside one sequence.
"""

from __future__ import annotations

import collections
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
