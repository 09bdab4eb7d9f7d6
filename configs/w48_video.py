"""HRNet-W48, video setting (clip_len 8): SIAM of the poster, Table 1 "Video" rows.

Run (the full model, Base+SIA+FD):

    python train.py --config configs/w48_video.py --workdir runs/w48_video

An ablation row of Table 1 is the config argument (base | sia | fd | full, default full):

    python train.py --config configs/w48_video.py:base --workdir runs/w48_video_base

or ``--config.model.sia.enabled=False --config.model.fd.enabled=False
--config.model.temporal.enabled=True`` (the ``base`` and ``fd`` rows switch the temporal path
on, ``sia`` and ``full`` off).

Targets (poster Table 1, 3DPW, mm; MPJPE / PA-MPJPE / PVE):
      Base      67.5   45.6   83.2
      +SIA      63.5   40.7   79.8
      +FD       65.1   42.3   81.1
      +SIA+FD   56.9   32.8   72.2
The full model also aims at CMU-Panoptic MPJPE avg 80.6 mm (Table 2);
AGORA F1 0.94, MPJPE 53.2, MVE 61.4, NMJE 56.0, NMVE 69.9 (Table 3).
"""

from configs import default, recipe


def get_config(ablation: str = "full"):
    config = default.poster_config(width=48, clip_len=8, ablation=ablation)
    # The video Base and Base+FD rows carry time through a path of their own, not SIA
    # (docs/choices.md "Temporal path without SIA"); with SIA on, SIA attends over the clip.
    config.model.temporal.enabled = not config.model.sia.enabled
    return recipe.apply(config, width=48)
