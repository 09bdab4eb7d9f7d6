"""HRNet-W32, video setting (clip_len 8): SIAM of the poster, Table 1 "Video" rows.

Run (the full model, Base+SIA+FD):

    python train.py --config configs/w32_video.py --workdir runs/w32_video

An ablation row of Table 1 is the config argument (base | sia | fd | full, default full):

    python train.py --config configs/w32_video.py:base --workdir runs/w32_video_base

or ``--config.model.sia.enabled=False --config.model.fd.enabled=False
--config.model.temporal.enabled=True`` (the ``base`` and ``fd`` rows switch the temporal path
on, ``sia`` and ``full`` off).

Targets (poster Table 1, 3DPW, mm; MPJPE / PA-MPJPE / PVE):
      Base      70.9   47.1   87.3
      +SIA      66.8   43.3   83.0
      +FD       68.5   45.1   84.7
      +SIA+FD   59.2   35.1   75.9
The full model also aims at CMU-Panoptic MPJPE avg 82.7 mm (Table 2);
AGORA F1 0.95, MPJPE 55.5, MVE 64.3, NMJE 58.4, NMVE 72.9 (Table 3).
"""

from configs import default, recipe


def get_config(ablation: str = "full"):
    config = default.poster_config(width=32, clip_len=8, ablation=ablation)
    # The video Base and Base+FD rows carry time through a path of their own, not SIA
    # (docs/choices.md "Temporal path without SIA"); with SIA on, SIA attends over the clip.
    config.model.temporal.enabled = not config.model.sia.enabled
    return recipe.apply(config, width=32)
