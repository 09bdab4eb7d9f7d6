"""Public metric functions of siam-jax (re-exported from ``siam_jax.evaluation.metrics``).

``mpjpe``, ``pa_mpjpe``, ``pve`` take ``[..., n, 3]`` arrays and return per-sample errors ``[...]``
in the input units; no root alignment happens inside (use the ``align_*`` helpers).
"""

from siam_jax.evaluation.metrics import (
    accel_error,
    align_by_mid_hip,
    align_by_pelvis,
    align_by_root,
    mpjpe,
    pa_mpjpe,
    pve,
    similarity_procrustes,
)

__all__ = [
    "accel_error",
    "align_by_mid_hip",
    "align_by_pelvis",
    "align_by_root",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "similarity_procrustes",
]
