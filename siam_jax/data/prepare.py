r"""Prepare any dataset: ``python -m siam_jax.data.prepare NAME --manual_dir DIR [--data_dir DIR]``.

Checks the official files under ``--manual_dir`` first (and prints the builder's download
instructions with the list of what is missing), builds the TFDS dataset with a progress bar, and
prints a summary of what was read and skipped (the builder's ``info.metadata`` counts, also written
as ``prepare_summary.json`` beside the prepared files). TFDS writes into a temporary
``*.incomplete*`` folder and renames it only when every split is written; on failure ``prepare``
also removes whatever else the attempt created under ``--data_dir``, so nothing half-written stays.

    python -m siam_jax.data.prepare coco --manual_dir data/manual/coco --config neuralannot \
        --body_model_dir data/body_models
    python -m siam_jax.data.prepare --list

``REGISTRY`` maps each NAME to its builder; ``register`` adds one (``PLANNED`` lists names announced
before their builder exists; none now).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import sys

from siam_jax.common import files

DEFAULT_DATA_DIR = os.path.join("data", "tensorflow_datasets")
PLANNED: tuple[str, ...] = ()  # issue 14: every builder exists


class PrepareError(RuntimeError):
    """A dataset cannot be prepared (unknown name, missing files); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """How to build one dataset (the builder's own ``missing_files(manual)`` lists what is missing);
    ``body_model`` says the builder takes ``body_model_dir``."""

    name: str
    module: str
    cls: str
    default_config: str | None = None
    video: bool = False  # frames of real videos (clips may be cut from them)
    body_model: bool = False
    manual: bool = True  # needs --manual_dir


REGISTRY: dict[str, Entry] = {}
ALIASES = {"coco": "coco_keypoints"}


def register(entry: Entry) -> None:
    if entry.name in REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry


_B = "siam_jax.data.builders"
for _entry in (
    Entry("agora", f"{_B}.agora", "Agora", "1280x720", body_model=True),
    Entry("pw3d", f"{_B}.pw3d", "Pw3d", "full", video=True, body_model=True),
    Entry("cmu_panoptic", f"{_B}.cmu_panoptic", "CmuPanoptic", video=True),
    Entry("coco_keypoints", f"{_B}.coco_family.coco", "CocoKeypoints", "keypoints",
          body_model=True),
    Entry("crowdpose", f"{_B}.coco_family.crowdpose", "Crowdpose", "keypoints", body_model=True),
    Entry("mpii", f"{_B}.coco_family.mpii", "Mpii", "keypoints", body_model=True),
    Entry("muco", f"{_B}.coco_family.muco", "Muco", "augmented", body_model=True),
    Entry("posetrack", f"{_B}.coco_family.posetrack", "Posetrack", "labeled", video=True,
          body_model=True),
    Entry("h36m", f"{_B}.h36m", "H36m", "neuralannot", video=True, body_model=True),
    Entry("mpi_inf_3dhp", f"{_B}.mpi_inf_3dhp", "MpiInf3dhp", "spin", video=True,
          body_model=True),
    Entry("bedlam", f"{_B}.bedlam", "Bedlam", video=True, body_model=True),
    Entry("siam_synthetic", f"{_B}.siam_synthetic", "SiamSynthetic", "default", video=True,
          manual=False),
):  # fmt: skip
    register(_entry)


def lookup(name: str) -> Entry:
    name = ALIASES.get(name, name)
    if name in REGISTRY:
        return REGISTRY[name]
    if name in PLANNED:
        raise PrepareError(f"dataset {name!r} has no builder yet (issue 14, second half)")
    known = sorted([*REGISTRY, *ALIASES])
    raise PrepareError(f"unknown dataset {name!r}; known: {known}")


def make_builder(entry: Entry, data_dir: str, config: str | None, body_model_dir: str | None):
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    # array_record: the input pipeline reads random-access sources (tfds.data_source).
    kwargs = {"data_dir": data_dir, "file_format": "array_record"}
    config = config or entry.default_config
    if config is not None:
        names = [c.name for c in cls.BUILDER_CONFIGS]
        if config not in names:
            raise PrepareError(f"{entry.name}: unknown config {config!r}; configs: {names}")
        kwargs["config"] = config
    if entry.body_model and body_model_dir:
        kwargs["body_model_dir"] = body_model_dir
    return cls(**kwargs)


def missing_files(entry: Entry, builder, manual_dir: str | None, config: str | None) -> list[str]:
    if not entry.manual:
        return []
    if not manual_dir or not os.path.isdir(manual_dir):
        return [f"the manual_dir {manual_dir!r} itself"]
    return builder.missing_files(manual_dir)


def _snapshot(root: str) -> set[str]:
    out = set()
    for folder, dirs, names in os.walk(root):
        out.update(os.path.join(folder, n) for n in dirs + names)
    return out


def _remove_new(root: str, before: set[str], existed: bool) -> list[str]:
    """Deletes every path under ``root`` that a failed attempt created (deepest first)."""
    new = sorted(_snapshot(root) - before, key=len, reverse=True) if os.path.isdir(root) else []
    for path in new:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    if not existed and os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)
    return new


def prepare(
    name: str,
    manual_dir: str | None,
    data_dir: str = DEFAULT_DATA_DIR,
    config: str | None = None,
    body_model_dir: str | None = None,
) -> dict:
    """Builds dataset ``name``; returns the summary (also written beside the dataset)."""
    import tensorflow_datasets as tfds

    entry = lookup(name)
    builder = make_builder(entry, data_dir, config, body_model_dir)
    missing = missing_files(entry, builder, manual_dir, config)
    if missing:
        raise PrepareError(
            f"{entry.name}: missing under manual_dir {manual_dir!r}:\n  "
            + "\n  ".join(missing)
            + f"\n\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS or ''}"
        )
    existed = os.path.isdir(data_dir)
    before = _snapshot(data_dir) if existed else set()
    tfds.enable_progress_bar()
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    try:
        builder.download_and_prepare(download_config=download_config)
    except BaseException:
        _remove_new(data_dir, before, existed)
        raise
    summary = {
        "dataset": entry.name,
        "config": builder.builder_config.name if builder.builder_config else None,
        "version": str(builder.version),
        "data_dir": os.fspath(builder.data_dir),
        "video": entry.video,
        "splits": {k: int(v.num_examples) for k, v in builder.info.splits.items()},
        "metadata": dict(builder.info.metadata or {}),
    }
    files.write_json(os.path.join(os.fspath(builder.data_dir), "prepare_summary.json"), summary)
    return summary


def format_summary(summary: dict) -> str:
    lines = [
        f"{summary['dataset']} ({summary['config']}, version {summary['version']}) "
        f"-> {summary['data_dir']}",
        "examples: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["splits"].items())),
    ]
    meta = summary["metadata"]
    if meta:
        width = max(len(k) for k in meta)
        lines += ["read / skipped:"] + [f"  {k:<{width}}  {meta[k]}" for k in sorted(meta)]
    return "\n".join(lines)


def _flag_values():
    """The command's absl flags, in their own ``FlagValues`` (no clash with other entry points)."""
    from absl import flags

    fv = flags.FlagValues()
    flags.DEFINE_string("manual_dir", None, "Folder with the official download.", flag_values=fv)
    flags.DEFINE_string("data_dir", DEFAULT_DATA_DIR, "TFDS data dir to write.", flag_values=fv)
    flags.DEFINE_string("config", None, "Builder config (default: the dataset's).", flag_values=fv)
    flags.DEFINE_string("body_model_dir", None, "Folder with SMPL_<GENDER>.npz|.pkl.",
                        flag_values=fv)  # fmt: skip
    flags.DEFINE_bool("list", False, "List the datasets and their configs.", flag_values=fv)
    return fv


def _list() -> str:
    rows = []
    for entry in REGISTRY.values():
        cls = getattr(importlib.import_module(entry.module), entry.cls)
        configs = [c.name for c in cls.BUILDER_CONFIGS] or ["-"]
        alias = [a for a, n in ALIASES.items() if n == entry.name]
        shown = f"{entry.name} ({alias[0]})" if alias else entry.name
        rows.append(f"  {shown}: {', '.join(configs)}")
    rows += [f"  {name}: not built yet" for name in PLANNED]
    return "datasets (configs):\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """The command: ``argv`` as ``sys.argv`` (program name first); returns the exit status."""
    from absl import flags

    fv = _flag_values()
    try:
        rest = fv(list(sys.argv if argv is None else argv))
    except flags.Error as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if fv.list:
        print(_list())
        return 0
    if len(rest) != 2:
        print("usage: python -m siam_jax.data.prepare NAME --manual_dir DIR [--data_dir DIR]\n"
              + _list(), file=sys.stderr)  # fmt: skip
        return 2
    try:
        summary = prepare(rest[1], fv.manual_dir, fv.data_dir, fv.config, fv.body_model_dir)
    except PrepareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
