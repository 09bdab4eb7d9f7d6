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
# (config name, mode) of the report's rows, in order.
QUICK_CONFIGS = (("w32_frame", "frame"),)
FULL_CONFIGS = (("w32_frame", "frame"), ("w32_video", "video"), ("w48_frame", "frame"),
                ("w48_video", "video"))  # fmt: skip


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


def run_suite(
    configs: Mapping[str, ml_collections.ConfigDict], *, quick: bool, repeats: int = 5
) -> dict:
    """The report: ``configs`` maps each name of ``QUICK_CONFIGS`` (``quick``) or
    ``FULL_CONFIGS`` to its experiment config."""
    from siam_jax.benchmarking.model import benchmark_siam
    from siam_jax.benchmarking.peak import measure_matmul_peak

    settings = QUICK_CONFIGS if quick else FULL_CONFIGS
    missing = [name for name, _ in settings if name not in configs]
    if missing:
        raise ValueError(f"run_suite needs the configs {missing} (have {sorted(configs)})")
    report: dict = {"machine": machine_description(), "quick": quick, "rows": []}
    peak = measure_matmul_peak()
    report["matmul_peak_gflops_per_s"] = peak / 1e9
    resolutions = QUICK_RESOLUTIONS if quick else FULL_RESOLUTIONS
    for config_name, mode in settings:
        for resolution in resolutions:
            logging.info("benchmarking %s at %d", config_name, resolution)
            row = benchmark_siam(configs[config_name].model, resolution, repeats=repeats)
            row.update(config=config_name, mode=mode)
            row["fraction_of_peak"] = row["achieved_gflops_per_s"] * 1e9 / peak
            report["rows"].append(row)
            print(_row_line(row), flush=True)
    for row in report["rows"]:
        if row["config"] == "w32_frame" and row["resolution"] == 512:
            report["siam_w32_frame_512_fraction_of_peak"] = row["fraction_of_peak"]

    if _references_installed():
        from siam_jax.benchmarking.hrnet import benchmark_hrnet
        from siam_jax.benchmarking.smpl import benchmark_smpl

        hrnet = {w: benchmark_hrnet(w, size=512) for w in ((32,) if quick else (32, 48))}
        report["hrnet"] = {str(w): r for w, r in hrnet.items()}
        report["hrnet_w32_jax_over_timm_time"] = hrnet[32]["ratio_jax_over_timm"]
        smpl = benchmark_smpl(batch_sizes=(1, 64, 512))
        report["smpl"] = {**smpl, "batches": {str(b): r for b, r in smpl["batches"].items()}}
        report["smpl_speedup_over_smplx_b64"] = smpl["batches"][64]["speedup"]
    else:
        report["references"] = "not installed (pip install -r requirements-dev.txt)"
    return report


def _row_line(row: dict) -> str:
    return (
        f"{row['config']:>10} {row['mode']:>5} {row['resolution']:>4}px "
        f"{row['latency_ms']:9.1f} ms {row['fps']:7.2f} FPS {row['gflops']:8.1f} GFLOP "
        f"{100 * row['fraction_of_peak']:5.1f}% of peak"
    )


def markdown_table(report: dict) -> str:
    lines = [
        f"Measured on: {report['machine']}; "
        f"matmul peak {report['matmul_peak_gflops_per_s']:.0f} GFLOP/s.",
        "",
        "| config | mode | input | latency (ms) | FPS | GFLOPs | % of matmul peak | compile (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['config']} | {r['mode']} | {r['resolution']} | {r['latency_ms']:.1f} | "
            f"{r['fps']:.2f} | {r['gflops']:.1f} | {100 * r['fraction_of_peak']:.1f} | "
            f"{r['compile_s']:.1f} |"
        )
    if "hrnet_w32_jax_over_timm_time" in report:
        lines += [
            "",
            f"HRNet-W32 backbone at 512: JAX time / timm time = "
            f"{report['hrnet_w32_jax_over_timm_time']:.2f}.",
            f"SMPL forward at batch 64: JAX throughput / smplx = "
            f"{report['smpl_speedup_over_smplx_b64']:.1f}x.",
        ]
    return "\n".join(lines) + "\n"


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
