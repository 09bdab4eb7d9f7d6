"""Dataset sources and the weighted mixture of training datasets, as Grain ``MapDataset``s.

A dataset spec is ``name[:config][/split]`` (configs/default.py ``data.train``), e.g.
``"siam_synthetic"``, ``"pw3d/train"``, ``"pw3d:occ/test"``; the TFDS name is then
``name/config``. Each element of the index datasets built here is ``(dataset_index, clip)``, a
small tuple: records are read and decoded later, after shuffling, mixing and sharding.

The mixture (``config.data.train``) is a list of entries ``(spec, weight)`` or ``(spec, weight,
overrides)``: ``overrides`` is a dict of ``config.data.augment`` keys for that dataset (ROMP's
per-dataset scale ranges) and optionally ``video`` (bool: whether clips may be cut from its
``sequence_id`` / ``frame_index``; default: the prepare registry's ``Entry.video``, and True for
datasets the registry does not know). ``PRESETS`` holds published mixtures (ROMP v1).
Sampling is Grain's ``MapDataset.mix``: a deterministic interleave in the weight proportions, so
the stream is a pure function of the config and resumable from its iterator state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grain
import numpy as np

from siam_jax.data import clips as clips_lib

# ROMP v1 (Arthur151/ROMP configs/v1.yml 'sample_prob', reference/TRAINING_DATA.md table 1), with
# ROMP's per-dataset zoom ranges (h36m 1.4-2.0, mpiinf 1.3-1.9, muco 1.4-2.2; ROMP h36m.py /
# mpi_inf_3dhp.py / MuCo.py scale_range), read as our zoom relative to the fitted image. ROMP
# trains COCO-2014, MPII and LSP with EFT fits and CrowdPose with 2D joints only. LSP (ROMP .06,
# scale 1.6-2.0) has no builder here: the preset leaves it out and rescales the other weights by
# 1 / .94 so they sum to 1, keeping ROMP's proportions (docs/choices.md "ROMP preset without LSP").
_ROMP_V1_SAMPLE_PROB = {"h36m": 0.20, "mpi_inf_3dhp": 0.16, "coco": 0.20, "lsp": 0.06,
                        "mpii": 0.10, "muco": 0.14, "crowdpose": 0.14}  # fmt: skip
_ROMP_V1_KEPT = 1.0 - _ROMP_V1_SAMPLE_PROB["lsp"]
PRESETS: dict[str, tuple[tuple, ...]] = {
    "romp_v1": tuple(
        (spec, _ROMP_V1_SAMPLE_PROB[romp] / _ROMP_V1_KEPT, overrides)
        for spec, romp, overrides in (
            ("h36m", "h36m", {"scale": (1.4, 2.0)}),
            ("mpi_inf_3dhp", "mpi_inf_3dhp", {"scale": (1.3, 1.9)}),
            ("coco_keypoints:eft", "coco", {}),
            ("mpii:eft", "mpii", {}),
            ("muco:augmented", "muco", {"scale": (1.4, 2.2)}),
            ("crowdpose:keypoints", "crowdpose", {}),
        )
    ),
}


@dataclasses.dataclass(frozen=True)
class MixtureEntry:
    """One dataset of the training mixture: spec, weight, augmentation overrides, video flag."""

    spec: str
    weight: float
    augment: dict
    video: bool | None = None  # None: the prepare registry decides


def parse_mixture(entries, augment_keys: Sequence[str]) -> list[MixtureEntry]:
    """``config.data.train`` -> ``MixtureEntry``s; bad entries raise naming the entry."""
    out = []
    for e in entries:
        if not isinstance(e, (tuple, list)) or len(e) not in (2, 3):
            raise ValueError(
                f"config.data.train entries are (spec, weight) or (spec, weight, overrides), "
                f"got {e!r}"
            )
        overrides = dict(e[2]) if len(e) == 3 else {}
        video = overrides.pop("video", None)
        unknown = sorted(set(overrides) - set(augment_keys))
        if unknown:
            raise ValueError(
                f"config.data.train entry {e[0]!r}: unknown augmentation overrides {unknown}; "
                f"known: {sorted(augment_keys)} and 'video'"
            )
        weight = float(e[1])
        if not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"config.data.train entry {e[0]!r}: weight must be > 0, got {e[1]!r}")
        out.append(
            MixtureEntry(str(e[0]), weight, overrides, None if video is None else bool(video))
        )
    if not out:
        raise ValueError("config.data.train is empty")
    return out


def is_video(spec: DatasetSpec, override: bool | None = None) -> bool:
    """Whether clips may be cut from a dataset's sequences: ``override`` if given, else the
    prepare registry's ``Entry.video`` for its builder, else True (datasets prepare does not know,
    e.g. test fixtures, are trusted to store real sequences)."""
    if override is not None:
        return bool(override)
    from siam_jax.data import prepare

    entry = prepare.REGISTRY.get(spec.name.partition("/")[0])
    return True if entry is None else bool(entry.video)


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
    specs: Sequence[str],
    default_split: str,
    data_dir: str,
    clip_len: int,
    *,
    eval_stride: bool,
    video: Sequence[bool | None] | None = None,
) -> list[OpenedDataset]:
    """Opens every dataset and indexes its clips (``eval_stride``: non-overlapping clips).

    The clip index comes from ``clips.cached_clips`` (built once per process); ``video[i]``
    overrides ``is_video`` for dataset i.
    """
    out = []
    for i, s in enumerate(specs):
        spec = DatasetSpec.parse(s, default_split)
        source = open_source(spec, data_dir)
        vid = clip_len > 1 and is_video(spec, None if video is None else video[i])
        stride = clip_len if eval_stride else 1
        clips = clips_lib.cached_clips(
            (str(data_dir), spec.name, spec.split),
            lambda spec=spec: open_source(spec, data_dir, skip_images=True),
            len(source),
            clip_len,
            stride=stride if vid else 1,
            video=vid,
        )
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
