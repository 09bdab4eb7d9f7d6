"""HRNet-W48, frame setting (clip_len 1): SIAM of the poster, Table 1 "Frame" rows.

Run (the full model, Base+SIA+FD):

    python train.py --config configs/w48_frame.py --workdir runs/w48_frame

An ablation row of Table 1 is the config argument (base | sia | fd | full, default full):

    python train.py --config configs/w48_frame.py:base --workdir runs/w48_frame_base

or ``--config.model.sia.enabled=False --config.model.fd.enabled=False``.

Targets (poster Table 1, 3DPW, mm; MPJPE / PA-MPJPE / PVE):
      Base      71.4   47.3   86.8
      +SIA      66.3   43.6   82.5
      +FD       68.0   45.1   84.0
      +SIA+FD   61.9   38.6   77.3
The full model also aims at CMU-Panoptic MPJPE avg 80.6 mm (Table 2);
AGORA F1 0.94, MPJPE 53.2, MVE 61.4, NMJE 56.0, NMVE 69.9 (Table 3).
"""

from configs import default, recipe


def get_config(ablation: str = "full"):
    config = default.poster_config(width=48, clip_len=1, ablation=ablation)
    return recipe.apply(config, width=48)
