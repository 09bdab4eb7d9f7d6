"""Run SIAM on an image, a folder of images or a video; write overlays, SMPL parameters, meshes.

  python demo.py --config configs/quickstart.py --checkpoint workdirs/quickstart \
      --input clip.mp4 --output out/ [--save_obj]
"""

import json

from absl import app, flags
from ml_collections import config_flags

from siam_jax.inference.demo import run_demo

_CONFIG = config_flags.DEFINE_config_file("config", None, "Model config file.", lock_config=True)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoints folder.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
_INPUT = flags.DEFINE_string("input", None, "Image, folder of images, or video file.")
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.")
_SAVE_OBJ = flags.DEFINE_bool("save_obj", False, "Also write one .obj mesh per person and frame.")
flags.mark_flags_as_required(["config", "checkpoint", "input", "output"])


def main(argv):
    del argv
    summary = run_demo(
        _CONFIG.value,
        _CHECKPOINT.value,
        _INPUT.value,
        _OUTPUT.value,
        step=_STEP.value,
        save_obj=_SAVE_OBJ.value,
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
