"""Benchmark siam-jax: latency/FPS over resolutions, FLOP/s vs peak, ratios vs PyTorch references.

python benchmark.py --quick --out bench.json     # CPU: W32 frame at 256/512 + references
python benchmark.py --out bench.json             # all configs, 256..768 (run it on a GPU)
"""

from pathlib import Path

from absl import app, flags

from siam_jax.benchmarking.suite import run_suite, write_report

_QUICK = flags.DEFINE_bool("quick", False, "W32 frame at 256 and 512 plus the reference ratios.")
_OUT = flags.DEFINE_string("out", "benchmark.json", "JSON path; .md and .png are written beside.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats per row (median reported).")


def main(argv):
    del argv
    report = run_suite(quick=_QUICK.value, repeats=_REPEATS.value)
    write_report(report, Path(_OUT.value))
    print(Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
    app.run(main)
