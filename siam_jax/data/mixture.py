"""Dataset sources and the weighted mixture of training datasets, as Grain ``MapDataset``s.

A dataset spec is ``name[:config][/split]`` (configs/default.py ``data.train``), e.g.
``"siam_synthetic"``, ``"pw3d/train"``, ``"pw3d:occ/test"``; the TFDS name is then
``name/config``. Each element of the index datasets built here is ``(dataset_index, clip)``, a
small tuple: records are read and decoded later, after shuffling, mixing and sharding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grain
import numpy as np

from siam_jax.data import clips as clips_lib


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str  # TFDS builder name, with "/config" when one is given
    split: str

    @classmethod
    def parse(cls, spec: str, default_split: str) -> DatasetSpec:
        if not spec or not isinstance(spec, str):
            raise ValueError(f"dataset spec must be 'name[:config][/split]', got {spec!r}")
        name, _, split = spec.partition("/")
        name, _, config = name.partition(":")
        if not name:
            raise ValueError(f"dataset spec {spec!r} has no dataset name")
        return cls(name=f"{name}/{config}" if config else name, split=split or default_split)


def open_source(spec: DatasetSpec, data_dir: str, *, skip_images: bool = False):
    """``tfds.data_source`` of one dataset split (array_record files written by its builder)."""
    import tensorflow_datasets as tfds

    decoders = {"image": tfds.decode.SkipDecoding()} if skip_images else None
    try:
        return tfds.data_source(
            spec.name, split=spec.split, data_dir=data_dir, decoders=decoders, download=False
        )
    except Exception as e:
        raise ValueError(
            f"cannot open TFDS dataset {spec.name!r} split {spec.split!r} in data_dir "
            f"{data_dir!r} as an array_record data source (build it first, e.g. "
            f"`tfds build siam_jax/data/builders/... --data_dir {data_dir}`; builders must write "
            f"file_format='array_record'): {e}"
        ) from e


@dataclasses.dataclass
class OpenedDataset:
    spec: DatasetSpec
    source: object  # tfds ArrayRecordDataSource, images decoded
    clips: np.ndarray  # [c t] record indices


def open_datasets(
    specs: Sequence[str], default_split: str, data_dir: str, clip_len: int, *, eval_stride: bool
) -> list[OpenedDataset]:
    """Opens every dataset and indexes its clips (``eval_stride``: non-overlapping clips)."""
    out = []
    for s in specs:
        spec = DatasetSpec.parse(s, default_split)
        source = open_source(spec, data_dir)
        keys = open_source(spec, data_dir, skip_images=True) if clip_len > 1 else source
        clips = clips_lib.source_clips(keys, clip_len, stride=clip_len if eval_stride else 1)
        if len(clips) == 0:
            raise ValueError(
                f"dataset {spec.name!r} split {spec.split!r} has no clip of {clip_len} "
                f"consecutive frames ({len(source)} records)"
            )
        out.append(OpenedDataset(spec=spec, source=source, clips=clips))
    return out


def _tag(index: int):
    def tag(clip: np.ndarray) -> tuple[int, np.ndarray]:
        return index, clip

    return tag


def train_index(
    datasets: Sequence[OpenedDataset],
    weights: Sequence[float],
    *,
    seed: int,
    process_index: int,
    process_count: int,
) -> grain.MapDataset:
    """Infinite, shuffled, per-host ``(dataset_index, clip)`` stream mixing the datasets by weight.

    Each dataset is shuffled (reshuffled every epoch) and repeated, then sharded across hosts
    *before* mixing: ``MapDataset.mix`` interleaves deterministically by weight, so sharding after
    it would skew every host's proportions.
    """
    if len(datasets) != len(weights):
        raise ValueError(f"{len(datasets)} datasets but {len(weights)} weights")
    w = np.asarray(weights, np.float64)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"mixture weights must be positive and finite, got {list(weights)}")
    parts = []
    for i, d in enumerate(datasets):
        ds = grain.MapDataset.source(d.clips).map(_tag(i))
        # Per-dataset seeds so two datasets of equal size do not shuffle in lockstep.
        ds = ds.shuffle(seed=seed * 1009 + i).repeat()
        parts.append(ds[process_index::process_count])
    if len(parts) == 1:
        return parts[0]
    return grain.MapDataset.mix(parts, list(w / w.sum()))
