"""The evaluation report: the poster's row beside ours, the JSON written to
``WORKDIR/eval/<dataset>_<split>.json`` (atomically; NaN as null) and the lines printed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from siam_jax.common import files
from siam_jax.evaluation import paper_numbers

# Where each poster table's numbers come from (the poster's Tables 1-3).
POSTER_SOURCE = {
    "agora": "AGORA test set, test-server numbers (Table 3)",
    "cmu_panoptic": "CMU-Panoptic test (Table 2)",
    "pw3d": "3DPW test (Table 1)",
    "pw3d_occ": "3DPW test (Table 1; the poster has no 3DPW-OCC row)",
}


def poster_table(dataset: str, result: Mapping[str, Any], config, split: str = "") -> str:
    """Ours (split named) beside the poster's row for the same setting, or a line saying there is
    none."""
    if dataset == "siam_synthetic":
        return "siam_synthetic: the poster reports no numbers for this dataset"
    m = config.model
    title = f"ours: {dataset} split {split or '?'} | poster: {POSTER_SOURCE[dataset]}"
    try:
        return paper_numbers.comparison_table(
            dataset,
            result,
            width=int(m.backbone.width),
            video=int(m.clip_len) > 1,
            sia=bool(m.sia.enabled),
            fd=bool(m.fd.enabled),
            title=title,
        )
    except KeyError as e:
        return f"{dataset}: no poster row for this setting ({e})"


def miss_line(dataset: str, metrics: Mapping[str, Any]) -> str | None:
    """The matched / missed count printed beside the metrics (3DPW, CMU-Panoptic, AGORA)."""
    if dataset.startswith("pw3d") and "num_gt" in metrics:
        return (
            f"every metric is a mean over {metrics['num_persons']} matched of {metrics['num_gt']}"
            f" GT people; missed {metrics['num_unmatched']} (miss rate "
            f"{metrics['miss_rate']:.3f}), ACCEL over {metrics.get('num_accel_frames', 0)} frames"
        )
    if dataset == "cmu_panoptic":
        return (
            f"missed {metrics.get('num_missed_persons', 0)} GT people in "
            f"{metrics.get('num_images_without_prediction', 0)} images without predictions, "
            f"each charged {metrics.get('miss_penalty_mm')} mm"
        )
    if dataset == "agora":
        return (
            f"{metrics.get('num_misses')} misses, {metrics.get('num_false_positives')} false "
            f"positives of {metrics.get('num_gt')} GT ({metrics.get('num_kids')} kids); vertex "
            f"errors over {metrics.get('body_verts')} vertices"
        )
    return None


def header_lines(report: Mapping[str, Any]) -> list[str]:
    """What every printed report states first (docs/evaluation.md, "What a report states")."""
    bm = report["body_model"]
    body = bm["kind"] if bm["kind"] == "procedural" else f"{bm['kind']} {bm['path']}"
    source = (
        f"predictions {report['predictions']}"
        if report.get("predictions")
        else f"checkpoint step {report['checkpoint_step']}"
    )
    note = [report["split_note"]] if report.get("split_note") else []
    return [
        f"{report['dataset']} split {report['split']}; protocol {report['protocol']}; {source}",
        *note,
        f"body model: {body} (gender {bm['gender']}, digest {bm['digest'][:16]})",
        f"intrinsics: {report['intrinsics']}",
        f"images {report['num_images']}, persons {report['num_persons']}",
    ]


def make_report(
    *,
    dataset: str,
    tfds_name: str,
    split: str,
    protocol: str,
    checkpoint_step: int | None,
    num_images: int,
    result: Mapping[str, Any],
    config,
    body_model: Mapping[str, Any],
    intrinsics: str,
    predictions: str | None = None,
    warnings: list[str] | None = None,
    split_note: str | None = None,
) -> dict[str, Any]:
    """The report dict (docs/evaluation.md, "Running eval.py"); ``result`` is the evaluator's
    (its ``protocol`` and ``num_persons`` move to the top level)."""
    metrics = dict(result)
    protocol = metrics.pop("protocol", protocol)
    num_persons = metrics.pop("num_persons", None)
    return {
        "dataset": dataset,
        "tfds_name": tfds_name,
        "split": split,
        "split_note": split_note,
        "protocol": protocol,
        "checkpoint_step": checkpoint_step,
        "predictions": predictions,
        "body_model": dict(body_model),
        "intrinsics": intrinsics,
        "warnings": list(warnings or []),
        "num_images": num_images,
        "num_persons": num_persons,
        "units": "mm",
        "metrics": metrics,
        "misses": miss_line(dataset, {**metrics, "num_persons": num_persons}),
        "poster_comparison": poster_table(dataset, metrics, config, split),
    }


def write_report(workdir: str, report: dict[str, Any]) -> str:
    """Writes ``report`` to ``WORKDIR/eval/<dataset>_<split>.json``, prints it; returns the path
    (also set as ``report['path']``)."""
    name = f"{report['dataset']}_{report['split'].replace('/', '_')}.json"
    path = os.path.join(workdir, "eval", name)
    files.write_json(path, report)
    report["path"] = path
    for line in [*header_lines(report), *report["warnings"]]:
        print(line)
    print(report["poster_comparison"])
    if report.get("misses"):
        print(report["misses"])
    print(f"wrote {path}")
    return path
