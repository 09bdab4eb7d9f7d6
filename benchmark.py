"""Benchmark siam-jax: latency/FPS over resolutions, FLOP/s vs peak, ratios vs PyTorch references.

python benchmark.py --quick --out bench.json     # CPU: W32 frame 256/512, W32 video 512, demo
python benchmark.py --out bench.json             # all configs, 256..768 (run it on a GPU)
python benchmark.py --demo --out demo.json       # the end-to-end demo figure alone (W32, 512)
python benchmark.py --input_pipeline [--config configs/default.py] [--dataset SPEC --data_dir D]
                                                 # training images/s of the Grain pipeline
python benchmark.py --model_stats [--flops] [--out stats.json]   # params (+ FLOPs) per variant
python benchmark.py --train_memory --out train_memory.json
                                                 # per-device memory and FLOPs of the training
                                                 # step of the poster configs (compile only)

Every suite report holds compile time, model-only latency and FPS per frame (frame mode: per
image; video mode: per output frame in steady state), the end-to-end demo FPS on a synthetic
512 px video, device, dtype, batch and resolution, the matmul peak at the model's precision,
and the ratios ``video_streaming_over_frame_cost`` and ``demo_over_model_fps`` (docs/demo.md).
Library logs below WARNING are off (``--verbosity 0`` brings INFO back).

The library does the work (siam_jax.benchmarking); this script loads the configs and passes them
in. ``--config.x=y`` overrides the input-pipeline config (e.g. ``--config.batch_size=16``,
``--config.data.num_workers=4``).
"""

import importlib
import json
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from siam_jax.common.logging_setup import quiet_library_logs

_QUICK = flags.DEFINE_bool("quick", False, "W32 frame 256/512, W32 video 512, demo, references.")
_OUT = flags.DEFINE_string(
    "out", "", "JSON path (suite: .md and .png beside; default bench.json; --demo: demo.json)."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats per row (median reported).")
_DEMO = flags.DEFINE_bool(
    "demo", False, "Only the end-to-end demo figure and demo_over_model_fps (W32 frame, 512 px)."
)
_INPUT_PIPELINE = flags.DEFINE_bool("input_pipeline", False, "Time the training input pipeline.")
_CONFIG = config_flags.DEFINE_config_file(
    "config",
    str(Path(__file__).resolve().parent / "configs" / "default.py"),
    "--input_pipeline: the experiment config file.",
)
_DATASET = flags.DEFINE_string(
    "dataset", "", "--input_pipeline: dataset spec; default: build a small siam_synthetic config."
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "--input_pipeline: TFDS data_dir of --dataset.")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 10, "--input_pipeline: batches timed.")
_MODEL_STATS = flags.DEFINE_bool("model_stats", False, "Parameter counts of the poster variants.")
_FLOPS = flags.DEFINE_bool("flops", False, "--model_stats: also compile and count FLOPs.")
_TRAIN_MEMORY = flags.DEFINE_bool(
    "train_memory", False, "Compile (not run) the poster configs' training step: memory, FLOPs."
)
_ONLY = flags.DEFINE_list("only", [], "--train_memory: these poster configs (default all four).")
POSTER = ("w32_frame", "w32_video", "w48_frame", "w48_video")


def _get_config(name: str):
    return importlib.import_module(f"configs.{name}").get_config


def _architecture_only(config):
    """The config with the embedded body and no weight or mean-parameter files: speed, memory
    and FLOPs depend on the architecture alone (the procedural body has SMPL's 6890 vertices,
    13776 faces and 24 joints), so the benchmark runs where the licensed files are absent."""
    config.model.body_model.path = config.model.body_model.h36m_regressor_path = ""
    config.model.regressor.mean_params_path = ""
    config.model.backbone.pretrained = ""
    return config


def _input_pipeline() -> None:
    from siam_jax.benchmarking.input_pipeline import benchmark_input_pipeline

    result = benchmark_input_pipeline(
        _CONFIG.value,
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        num_batches=_NUM_BATCHES.value,
    )
    print(json.dumps(result, indent=2))
    if _OUT.value:
        from siam_jax.common.files import write_json

        write_json(_OUT.value, result)


def _model_stats() -> None:
    from siam_jax.benchmarking import model_stats

    names = POSTER
    getters = {n: (lambda row, g=_get_config(n): _architecture_only(g(row))) for n in names}
    rows = model_stats.collect(getters, _FLOPS.value)
    if _OUT.value:
        from siam_jax.common.files import write_json

        write_json(_OUT.value, rows, indent=1)


def _demo() -> None:
    from siam_jax.benchmarking import suite
    from siam_jax.common.files import write_json

    report = suite.run_demo_only(_architecture_only(_get_config("w32_frame")()))
    write_json(_OUT.value or "demo.json", report)
    print(suite.demo_markdown(report))


def _train_memory() -> None:
    """Each poster config at its per-device batch (``recipe.RECIPE_DEVICES`` devices,
    ``optimizer.accumulate_steps`` micro-batches); the JSON is rewritten after each config."""
    from configs import recipe
    from siam_jax.benchmarking import train_memory
    from siam_jax.common.files import write_json, write_text

    if not train_memory.compile_only_flags():
        print("note: a JAX backend started before --train_memory set its compile-only flag")
    names = tuple(_ONLY.value) or POSTER
    configs = {n: _architecture_only(_get_config(n)()) for n in names}
    per_device = {
        n: int(c.batch_size) // recipe.RECIPE_DEVICES // int(c.optimizer.accumulate_steps)
        for n, c in configs.items()
    }
    out = Path(_OUT.value or "train_memory.json")

    def save(report):
        write_json(out, report, indent=1)
        write_text(out.with_suffix(".md"), train_memory.markdown_table(report, names))

    save(train_memory.run(configs, per_device, on_row=save))
    print(out.with_suffix(".md").read_text())


def _suite() -> None:
    from siam_jax.benchmarking import suite

    settings = suite.QUICK_CONFIGS if _QUICK.value else suite.FULL_CONFIGS
    configs = {name: _architecture_only(_get_config(name)()) for name, _, _ in settings}
    report = suite.run_suite(configs, quick=_QUICK.value, repeats=_REPEATS.value)
    out = Path(_OUT.value or "benchmark.json")
    suite.write_report(report, out)
    print(out.with_suffix(".md").read_text())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    if _INPUT_PIPELINE.value + _MODEL_STATS.value + _DEMO.value + _TRAIN_MEMORY.value > 1:
        raise app.UsageError(
            "--input_pipeline, --model_stats, --demo and --train_memory are separate runs: pass one"
        )
    if _DEMO.value:
        _demo()
    elif _TRAIN_MEMORY.value:
        _train_memory()
    elif _INPUT_PIPELINE.value:
        _input_pipeline()
    elif _MODEL_STATS.value:
        _model_stats()
    else:
        _suite()


if __name__ == "__main__":
    app.run(main)
