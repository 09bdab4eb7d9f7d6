"""The benchmark suite behind ``benchmark.py``: model rows, reference ratios, JSON/Markdown/plot.

All figures of one report are measured in one process, one after the other, so that ratios
(JAX vs the PyTorch references, achieved vs peak FLOP/s) are comparable on a noisy machine.
The entry script passes the configs in (``QUICK_CONFIGS`` / ``FULL_CONFIGS`` name the ones it
loads): the library never imports ``configs``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

import jax
import ml_collections
from absl import logging

from siam_jax.common.files import atomic_path, write_json, write_text

FULL_RESOLUTIONS = (256, 384, 512, 640, 768)
QUICK_RESOLUTIONS = (256, 512)
RATIO_RESOLUTION = 512  # the issue-17 ratios compare the W32 models at 512 px
# (config name, mode, resolutions) of the report's rows, in order. Quick: the W32 frame model at
# 256 and 512 and the W32 video model at 512 (for video_streaming_over_frame_cost).
QUICK_CONFIGS = (("w32_frame", "frame", QUICK_RESOLUTIONS),
                 ("w32_video", "video", (RATIO_RESOLUTION,)))  # fmt: skip
FULL_CONFIGS = tuple((name, mode, FULL_RESOLUTIONS) for name, mode in (
    ("w32_frame", "frame"), ("w32_video", "video"), ("w48_frame", "frame"),
    ("w48_video", "video")))  # fmt: skip
DEMO_FRAMES = 12  # frames of the synthetic 512 px video of the end-to-end demo figure


def machine_description() -> str:
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", device.platform)
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, {jax.default_backend()} ({kind}), jax {jax.__version__}"


def _references_installed() -> bool:
    try:
        import smplx  # noqa: F401
        import timm  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _model_rows(configs, settings, repeats: int, peak: float) -> list[dict]:
    from siam_jax.benchmarking.model import benchmark_siam

    rows = []
    for config_name, mode, resolutions in settings:
        for resolution in resolutions:
            logging.info("benchmarking %s at %d", config_name, resolution)
            row = benchmark_siam(configs[config_name].model, resolution, repeats=repeats)
            row.update(config=config_name, mode=mode)
            row["fraction_of_peak"] = row["achieved_gflops_per_s"] * 1e9 / peak
            rows.append(row)
            print(_row_line(row), flush=True)
    return rows


def _find(rows: list[dict], config: str, resolution: int) -> dict | None:
    return next((r for r in rows if r["config"] == config and r["resolution"] == resolution), None)


def headline_ratios(report: dict) -> dict:
    """The issue-17 ratios from a report's rows and demo figure (absent inputs: absent keys).

    ``video_streaming_over_frame_cost``: W32 video per-frame cost (steady state) over the W32
    frame model's per-image cost, 512 px. ``demo_over_model_fps``: end-to-end demo FPS over the
    model-only FPS of the same step (W32 frame, 512 px, batch 1), both measured by
    ``benchmark_demo`` in one process; ``demo_over_frame_row_fps``: the demo FPS over the W32
    frame row's FPS (the bare forward, measured earlier in the run), for comparison.
    """
    out = {}
    frame = _find(report["rows"], "w32_frame", RATIO_RESOLUTION)
    video = _find(report["rows"], "w32_video", RATIO_RESOLUTION)
    if "demo" in report:
        out["demo_over_model_fps"] = report["demo"]["demo_over_model_fps"]
    if frame is not None:
        out["siam_w32_frame_512_fraction_of_peak"] = frame["fraction_of_peak"]
        if video is not None:
            out["video_streaming_over_frame_cost"] = video["frame_ms"] / frame["frame_ms"]
            out["video_frame_cost_method"] = video["frame_cost"]
        if "demo" in report:
            out["demo_over_frame_row_fps"] = report["demo"]["demo_fps"] / frame["fps"]
    return out


def run_demo_only(config: ml_collections.ConfigDict) -> dict:
    """The end-to-end demo figure alone (``benchmark.py --demo``): ``config`` is the W32 frame
    experiment config; the report holds the machine, the demo figure and its ratio."""
    from siam_jax.benchmarking.demo import benchmark_demo

    report: dict = {"machine": machine_description(), "rows": []}
    report["demo"] = benchmark_demo(config, RATIO_RESOLUTION, num_frames=DEMO_FRAMES)
    report.update(headline_ratios(report))
    return report


def run_suite(
    configs: Mapping[str, ml_collections.ConfigDict], *, quick: bool, repeats: int = 5
) -> dict:
    """The report: ``configs`` maps each name of ``QUICK_CONFIGS`` (``quick``) or
    ``FULL_CONFIGS`` to its experiment config."""
    import jax.numpy as jnp

    from siam_jax.benchmarking.demo import benchmark_demo
    from siam_jax.benchmarking.peak import measure_matmul_peak, precision_name

    settings = QUICK_CONFIGS if quick else FULL_CONFIGS
    missing = [name for name, _, _ in settings if name not in configs]
    if missing:
        raise ValueError(f"run_suite needs the configs {missing} (have {sorted(configs)})")
    # The peak at the precision the model runs at (issue 20): its compute dtype, default precision.
    dtype = jnp.dtype(str(configs["w32_frame"].model.compute_dtype))
    report: dict = {"machine": machine_description(), "quick": quick, "rows": []}
    peak = measure_matmul_peak(dtype=dtype)
    report["matmul_peak_gflops_per_s"] = peak / 1e9
    report["matmul_peak_precision"] = precision_name(dtype)
    report["rows"] = _model_rows(configs, settings, repeats, peak)
    logging.info("benchmarking the end-to-end demo at %d", RATIO_RESOLUTION)
    report["demo"] = benchmark_demo(configs["w32_frame"], RATIO_RESOLUTION, num_frames=DEMO_FRAMES)
    report.update(headline_ratios(report))
    if _references_installed():
        report.update(_references(quick))
    else:
        report["references"] = "not installed (pip install -r requirements-dev.txt)"
    return report


def _references(quick: bool) -> dict:
    from siam_jax.benchmarking.hrnet import benchmark_hrnet
    from siam_jax.benchmarking.smpl import benchmark_smpl

    out: dict = {}
    hrnet = {w: benchmark_hrnet(w, size=512) for w in ((32,) if quick else (32, 48))}
    out["hrnet"] = {str(w): r for w, r in hrnet.items()}
    out["hrnet_w32_jax_over_timm_time"] = hrnet[32]["ratio_jax_over_timm"]
    smpl = benchmark_smpl(batch_sizes=(1, 64, 512))
    out["smpl"] = {**smpl, "batches": {str(b): r for b, r in smpl["batches"].items()}}
    out["smpl_speedup_over_smplx_b64"] = smpl["batches"][64]["speedup"]
    return out


def _row_line(row: dict) -> str:
    return (
        f"{row['config']:>10} {row['mode']:>5} {row['resolution']:>4}px "
        f"{row['latency_ms']:9.1f} ms/clip {row['frame_ms']:9.1f} ms/frame {row['fps']:7.2f} FPS "
        f"{row['gflops']:8.1f} GFLOP {100 * row['fraction_of_peak']:5.1f}% of peak"
    )


def markdown_table(report: dict) -> str:
    device = report["rows"][0]["device"] if report["rows"] else "?"
    lines = [
        f"Measured on: {report['machine']}; device {device}; "
        f"matmul peak {report['matmul_peak_gflops_per_s']:.0f} GFLOP/s at "
        f"{report.get('matmul_peak_precision', 'float32, matmul precision HIGHEST')}.",
        "",
        "| config | mode | input | batch | dtype | latency / clip (ms) | per frame (ms) | FPS "
        "| GFLOPs | % of matmul peak | compile (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['config']} | {r['mode']} | {r['resolution']} | {r.get('batch', 1)} | "
            f"{r.get('dtype', 'float32')} | {r['latency_ms']:.1f} | "
            f"{r.get('frame_ms', r['latency_ms']):.1f} | {r['fps']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['fraction_of_peak']:.1f} | {r['compile_s']:.1f} |"
        )
    lines += _markdown_notes(report)
    return "\n".join(lines) + "\n"


def _markdown_notes(report: dict) -> list[str]:
    lines = [""]
    video = [r for r in report["rows"] if r["mode"] == "video"]
    if video:
        lines.append(f"Video rows: per frame = {video[0]['frame_cost']}.")
    if "demo" in report:
        d = report["demo"]
        lines.append(
            f"End-to-end demo (decode, model, render, write; synthetic {d['resolution']} px "
            f"video, {d['people_per_frame']} people in view, {d['frames']} frames): "
            f"{d['demo_fps']:.2f} FPS; the same model step alone {d['model_fps']:.2f} FPS "
            f"({d['model_calls']} calls, same process), inside the demo "
            f"{d['demo_model_fps']:.2f} FPS; the writer stage (files, overlay, encoding, "
            f"overlapping the model) {d['demo_writer_ms_per_frame']:.0f} ms per frame."
        )
    for key in ("video_streaming_over_frame_cost", "demo_over_model_fps",
                "demo_over_frame_row_fps"):  # fmt: skip
        if key in report:
            lines.append(f"{key} = {report[key]:.2f}.")
    if "hrnet_w32_jax_over_timm_time" in report:
        lines += [
            f"HRNet-W32 backbone at 512: JAX time / timm time = "
            f"{report['hrnet_w32_jax_over_timm_time']:.2f}.",
            f"SMPL forward at batch 64: JAX throughput / smplx = "
            f"{report['smpl_speedup_over_smplx_b64']:.1f}x.",
        ]
    return lines


def demo_markdown(report: dict) -> str:
    """The notes of a ``run_demo_only`` report (machine, demo figure, ratio) as Markdown."""
    return "\n".join([f"Measured on: {report['machine']}.", *_markdown_notes(report)]) + "\n"


def plot_fps(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["config"] for r in report["rows"]}):
        rows = [r for r in report["rows"] if r["config"] == name]
        rows.sort(key=lambda r: r["resolution"])
        ax.plot([r["resolution"] for r in rows], [r["fps"] for r in rows], marker="o", label=name)
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel("frames per second")
    ax.set_title("SIAM inference speed (batch 1)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict, out: Path) -> None:
    """Writes ``out`` (JSON), ``out`` with .md (table) and .png (plot), each atomically."""
    out = Path(out)
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), markdown_table(report))
    with atomic_path(out.with_suffix(".png")) as tmp:
        plot_fps(report, Path(tmp))
