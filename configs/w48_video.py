"""HRNet-W48, video setting (clip_len 8): SIAM of the poster, Table 1 "Video" rows.

Run (the full model, Base+SIA+FD):

    python train.py --config configs/w48_video.py --workdir runs/w48_video

An ablation row of Table 1 is the config argument (base | sia | fd | full, default full):

    python train.py --config configs/w48_video.py:base --workdir runs/w48_video_base

or ``--config.model.sia.enabled=False --config.model.fd.enabled=False``.

Targets (poster Table 1, 3DPW, mm; MPJPE / PA-MPJPE / PVE):
      Base      67.5   45.6   83.2
      +SIA      63.5   40.7   79.8
      +FD       65.1   42.3   81.1
      +SIA+FD   56.9   32.8   72.2
The full model also aims at CMU-Panoptic MPJPE avg 80.6 mm (Table 2);
AGORA F1 0.94, MPJPE 53.2, MVE 61.4, NMJE 56.0, NMVE 69.9 (Table 3).
"""

from configs import default

ABLATIONS = {  # Table 1 rows: (sia.enabled, fd.enabled)
    "base": (False, False),
    "sia": (True, False),
    "fd": (False, True),
    "full": (True, True),
}


def get_config(ablation: str = "full"):
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {sorted(ABLATIONS)}, got {ablation!r}")
    config = default.get_config()
    config.model.backbone.width = 48
    config.model.clip_len = 8
    config.model.sia.enabled, config.model.fd.enabled = ABLATIONS[ablation]
    return config
