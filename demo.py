"""Run SIAM on an image, a folder of images, a video or a folder of videos (docs/demo.md).

  python demo.py --config configs/quickstart.py --checkpoint workdirs/quickstart \
      --input clip.mp4 --output out/ [--fov 60 | --intrinsics fx,fy,cx,cy] [--smooth] \
      [--export bvh] [--side_view] [--save_obj]

Writes per frame ``params/<frame>.npz`` (docs/prediction_format.md), the overlay, and the
summary (frames, IDs, demo and model-only FPS) to ``<output>/<input>.summary.json``; finished
inputs are skipped on a rerun. Library logs below WARNING are off; ``--verbosity 0`` shows INFO.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from siam_jax.common.logging_setup import quiet_library_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Model config file.", lock_config=True)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoints folder.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
_INPUT = flags.DEFINE_string("input", None, "Image, folder of images, video, or folder of videos.")
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.")
_FOV = flags.DEFINE_float(
    "fov", None, "Field of view (degrees) across the frame's longer side (default: the config's "
    "model.fov_degrees, 60).")  # fmt: skip
_INTRINSICS = flags.DEFINE_string(
    "intrinsics", None, "fx,fy,cx,cy of the input frames in pixels (instead of --fov)."
)
_SMOOTH = flags.DEFINE_bool("smooth", False, "One-Euro smoothing per track (pose, shape, transl).")
_EXPORT = flags.DEFINE_multi_enum("export", [], ["bvh"], "bvh: one BVH file per track (videos).")
_SIDE_VIEW = flags.DEFINE_bool("side_view", False, "A side view of the scene beside the overlay.")
_SAVE_OBJ = flags.DEFINE_bool("save_obj", False, "Also write one .obj mesh per person and frame.")
flags.mark_flags_as_required(["config", "checkpoint", "input", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    from siam_jax.inference.demo import DemoOptions, run_demo
    from siam_jax.inference.intrinsics import camera_from_flags

    config = _CONFIG.value
    try:
        camera = camera_from_flags(_FOV.value, _INTRINSICS.value, config.model.fov_degrees)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    options = DemoOptions(
        camera=camera,
        save_obj=_SAVE_OBJ.value,
        smooth=_SMOOTH.value,
        export=tuple(_EXPORT.value),
        side_view=_SIDE_VIEW.value,
    )
    summary = run_demo(
        config, _CHECKPOINT.value, _INPUT.value, _OUTPUT.value, step=_STEP.value, options=options
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
