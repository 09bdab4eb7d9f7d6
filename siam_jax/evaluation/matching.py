"""Matching predicted people to GT people by their centres (the siam_synthetic protocol).

The benchmark protocols match their own way: AGORA and 3DPW with AGORA's greedy 2D matcher
(``agora_matching``, ``pw3d.match_persons``), CMU-Panoptic with CRMH's argmin (``panoptic``).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float


def nearest_centre_pairs(
    pred_centres: Float[np.ndarray, "q 2"], gt_centres: Float[np.ndarray, "n 2"]
) -> list[tuple[int, int]]:
    """One-to-one greedy matching by increasing centre distance (pixels): (pred, gt) pairs."""
    p, g = np.asarray(pred_centres, np.float64), np.asarray(gt_centres, np.float64)
    if len(p) == 0 or len(g) == 0:
        return []
    d = np.linalg.norm(p[:, None] - g[None], axis=-1)
    pairs, used_p, used_g = [], set(), set()
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), d.shape[1])
        if i in used_p or j in used_g:
            continue
        pairs.append((i, j))
        used_p.add(i)
        used_g.add(j)
    return pairs
