"""Benchmark names of ``eval.py --dataset`` -> the pipeline's dataset spec and split."""

from __future__ import annotations

DATASETS = ("pw3d", "pw3d_occ", "agora", "cmu_panoptic", "siam_synthetic")


def check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")


def dataset_spec(config, dataset: str, split: str | None) -> tuple[str, str]:
    """``(pipeline dataset spec 'name[:config]', split)`` of a benchmark name.

    Defaults: 3DPW 'test'; 3DPW-OCC 'train+validation+test' (the whole occlusion subset, as
    ROMP/BEV evaluate it; the builder keeps the official split folders); AGORA 'validation' (the
    test split has no public GT: use it with ``export_agora`` only); CMU-Panoptic 'test';
    siam_synthetic ``config.data.eval_dataset`` when it names siam_synthetic, its eval split.
    """
    check_dataset(dataset)
    if dataset == "pw3d":
        return "pw3d:full", split or "test"
    if dataset == "pw3d_occ":
        return "pw3d:pw3d_occ", split or "train+validation+test"
    if dataset == "agora":
        return f"agora:{config.data.real.agora_config}", split or "validation"
    if dataset == "cmu_panoptic":
        return "cmu_panoptic", split or "test"
    spec = str(config.data.eval_dataset)  # siam_synthetic
    if spec.split("/")[0].split(":")[0] != "siam_synthetic":
        spec = "siam_synthetic"
    name, _, spec_split = spec.partition("/")
    return name, split or spec_split or str(config.data.eval_split)
