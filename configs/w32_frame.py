"""HRNet-W32, frame setting (clip_len 1): SIAM of the poster, Table 1 "Frame" rows.

Run (the full model, Base+SIA+FD):

    python train.py --config configs/w32_frame.py --workdir runs/w32_frame

An ablation row of Table 1 is the config argument (base | sia | fd | full, default full):

    python train.py --config configs/w32_frame.py:base --workdir runs/w32_frame_base

or ``--config.model.sia.enabled=False --config.model.fd.enabled=False``.

Targets (poster Table 1, 3DPW, mm; MPJPE / PA-MPJPE / PVE):
      Base      74.7   49.4   90.1
      +SIA      69.2   45.8   85.3
      +FD       71.0   47.5   87.2
      +SIA+FD   64.6   40.4   80.7
The full model also aims at CMU-Panoptic MPJPE avg 82.7 mm (Table 2);
AGORA F1 0.95, MPJPE 55.5, MVE 64.3, NMJE 58.4, NMVE 72.9 (Table 3).
"""

from configs import default, recipe


def get_config(ablation: str = "full"):
    config = default.poster_config(width=32, clip_len=1, ablation=ablation)
    return recipe.apply(config, width=32)
