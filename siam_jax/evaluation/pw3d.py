"""3DPW (and 3DPW-OCC) evaluation protocols: MPJPE, PA-MPJPE on LSP-14 from the H36M regressor,
and PVE, for two protocols (PROTOCOLS.md section 2.4):

* ``romp_vibe`` (default; VIBE lib/core/evaluate.py, reused by ROMP): GT meshes from the
  **neutral** SMPL model; root = mid-hip of the 14 LSP joints, ``(j[2] + j[3]) / 2``; PVE over all
  6890 vertices after shifting each mesh by the same mid-hip.
* ``spin`` (SPIN eval.py): GT meshes from the **gendered** SMPL models; root = the H36M-regressed
  pelvis (regressor row 0, not one of the 14 joints). SPIN reports no PVE; ours shifts the
  vertices by the same regressed pelvis.

Which GT model builds ``gt_vertices`` is the caller's part: ``gt_body_gender(protocol, gender)``
names it. PA-MPJPE is the per-person similarity Procrustes on the 14 joints in both.

Matching of predictions to GT people (documented in docs/evaluation.md): ``match_persons`` runs
AGORA's greedy 2D matcher on the 24 SMPL joints projected into the image (every GT valid). The
poster-era methods report 3DPW over matched people: ROMP reads its prediction at each GT person's
centre (no miss is possible), BEV's 3DPW numbers likewise average over the people it scored. We
follow that: the means are over matched people, and the missed ones are counted and reported
beside every metric (``num_unmatched``, ``num_gt``, ``miss_rate``), never silently dropped.

Acceleration error (``accel_tracks``): VIBE's compute_error_accel on the 14 root-relative LSP
joints of each GT person's track, mm/frame^2; a second difference touching a frame where the
person is not matched is left out (VIBE's ``vis`` mask).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from siam_jax.body.joint_sets import H36M_TO_J14  # SPIN constants.py: LSP-14 from H36M-17
from siam_jax.evaluation import metrics
from siam_jax.evaluation.agora_matching import match_image

PROTOCOLS = ("romp_vibe", "spin")
# LSP-14 order: R ankle, R knee, R hip, L hip, ... (SPIN constants.py); VIBE's mid-hip uses 2, 3.
LSP_R_HIP, LSP_L_HIP = 2, 3
H36M_PELVIS = 0
MM = 1000.0


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown 3DPW protocol {protocol!r}; choose one of {PROTOCOLS}")


def gt_body_gender(protocol: str, gender: str) -> str:
    """SMPL model that builds the GT mesh: neutral for romp_vibe, the actor's for spin.

    ``gender`` is 3DPW's ``genders`` entry ('m' / 'f') or 'male' / 'female'.
    """
    _check_protocol(protocol)
    if protocol == "romp_vibe":
        return "neutral"
    g = str(gender).lower()
    if g in ("m", "male"):
        return "male"
    if g in ("f", "female"):
        return "female"
    raise ValueError(f"3DPW gender must be 'm' or 'f', got {gender!r}")


def regress_h36m(
    vertices: Float[ArrayLike, "... v 3"], h36m_regressor: Float[ArrayLike, "17 v"]
) -> Float[Array, "... 17 3"]:
    """H36M-17 joints = J_regressor_h36m @ vertices (SPIN eval.py)."""
    return jnp.einsum("jv,...vc->...jc", jnp.asarray(h36m_regressor), jnp.asarray(vertices))


def lsp14_root_relative(
    vertices: Float[ArrayLike, "... v 3"], h36m_regressor: Float[ArrayLike, "17 v"], protocol: str
) -> tuple[Float[Array, "... 14 3"], Float[Array, "... 3"]]:
    """The 14 LSP joints minus the protocol's root, and that root (module doc)."""
    j17 = regress_h36m(vertices, h36m_regressor)
    j14 = j17[..., jnp.asarray(H36M_TO_J14), :]
    if protocol == "romp_vibe":
        root = 0.5 * (j14[..., LSP_R_HIP, :] + j14[..., LSP_L_HIP, :])
    else:
        root = j17[..., H36M_PELVIS, :]
    return j14 - root[..., None, :], root


@functools.partial(jax.jit, static_argnames=("protocol",))
def pw3d_errors(
    pred_vertices: Float[ArrayLike, "... v 3"],
    gt_vertices: Float[ArrayLike, "... v 3"],
    h36m_regressor: Float[ArrayLike, "17 v"],
    protocol: str = "romp_vibe",
) -> dict[str, Float[Array, "..."]]:
    """Per-person ``mpjpe``, ``pa_mpjpe`` and ``pve`` in metres under ``protocol``."""
    _check_protocol(protocol)
    pv, gv = jnp.asarray(pred_vertices), jnp.asarray(gt_vertices)
    p14r, p_root = lsp14_root_relative(pv, h36m_regressor, protocol)
    g14r, g_root = lsp14_root_relative(gv, h36m_regressor, protocol)
    return {
        "mpjpe": metrics.mpjpe(p14r, g14r),
        "pa_mpjpe": metrics.pa_mpjpe(p14r, g14r),
        "pve": metrics.pve(pv - p_root[..., None, :], gv - g_root[..., None, :]),
    }


def match_persons(
    pred_joints2d: Sequence[np.ndarray], gt_joints2d: Sequence[np.ndarray]
) -> list[tuple[int, int]]:
    """(pred, gt) pairs from AGORA's greedy 2D matcher on the 24 SMPL joints, all GT valid."""
    if not pred_joints2d or not gt_joints2d:
        return []
    m = match_image(pred_joints2d, gt_joints2d, np.ones(len(gt_joints2d), bool))
    return list(m.pairs)


class Pw3dAccumulator:
    """Collects per-person errors over a split and reports them in mm with the protocol name."""

    def __init__(self, h36m_regressor: Float[ArrayLike, "17 v"], protocol: str = "romp_vibe"):
        _check_protocol(protocol)
        self.protocol = protocol
        self.regressor = jnp.asarray(h36m_regressor)
        self._errors: dict[str, list[np.ndarray]] = {"mpjpe": [], "pa_mpjpe": [], "pve": []}
        self.num_unmatched = 0

    def add(
        self,
        pred_vertices: Float[ArrayLike, "n v 3"],
        gt_vertices: Float[ArrayLike, "n v 3"],
        valid: Bool[ArrayLike, " n"] | None = None,
    ) -> None:
        """Add matched people (row i of both arrays is one person); ``valid`` drops rows."""
        pv, gv = np.asarray(pred_vertices), np.asarray(gt_vertices)
        if pv.shape != gv.shape or pv.ndim != 3 or pv.shape[-1] != 3:
            raise ValueError(f"pred_vertices {pv.shape} and gt_vertices {gv.shape}: need [n v 3]")
        if pv.shape[1] != self.regressor.shape[1]:
            raise ValueError(
                f"vertices have {pv.shape[1]} points, the H36M regressor {self.regressor.shape[1]}"
            )
        errs = pw3d_errors(pv, gv, self.regressor, protocol=self.protocol)
        keep = np.ones(pv.shape[0], bool) if valid is None else np.asarray(valid, bool)
        for k, v in errs.items():
            self._errors[k].append(np.asarray(v, np.float64)[keep])

    def add_unmatched(self, count: int = 1) -> None:
        """GT people no prediction was matched to (reported, not averaged)."""
        self.num_unmatched += int(count)

    @property
    def num_persons(self) -> int:
        return int(sum(len(e) for e in self._errors["mpjpe"]))

    def result(self) -> dict[str, float | int | str]:
        """``MPJPE``, ``PA-MPJPE``, ``PVE`` in mm (mean over people), counts and the protocol."""
        out: dict[str, float | int | str] = {"protocol": self.protocol}
        for key, name in (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("pve", "PVE")):
            vals = np.concatenate(self._errors[key]) if self._errors[key] else np.zeros(0)
            out[name] = float(MM * vals.mean()) if vals.size else float("nan")
        out["num_persons"] = self.num_persons
        out["num_unmatched"] = self.num_unmatched
        # Reported beside every metric: the means are over matched people only (module doc).
        out["num_gt"] = self.num_persons + self.num_unmatched
        out["miss_rate"] = self.num_unmatched / out["num_gt"] if out["num_gt"] else float("nan")
        return out


def accel_tracks(tracks) -> np.ndarray:
    """Per-difference acceleration errors (metres/frame^2) of ``tracks``: each a list of
    ``(frame_index, pred14 [14 3], gt14 [14 3])`` of one GT person (module doc)."""
    errs = []
    for items in tracks:
        if len(items) < 3:
            continue
        frames = np.array([f for f, _, _ in items])
        t0, n = frames.min(), frames.max() - frames.min() + 1
        pred, gt = np.zeros((n, 14, 3)), np.zeros((n, 14, 3))
        valid = np.zeros(n, bool)
        for f, p, g in items:
            pred[f - t0], gt[f - t0], valid[f - t0] = p, g, True
        e = np.asarray(metrics.accel_error(pred, gt, valid), np.float64)
        errs.append(e[np.isfinite(e)])
    return np.concatenate(errs) if errs else np.zeros(0)
