"""SIAM assembly: backbone -> neck -> centre heatmap -> instance tokens -> SIA -> FD -> regressor
-> camera -> SMPL, returning the output vocabulary of docs/architecture.md.

The forward is cut in three stages (docs/model.md "Stages"): ``encode`` (everything that depends
on one frame: backbone, neck, centre head, token gathering), ``interact`` (everything that
crosses the frames of the window: the temporal path and SIA) and ``decode`` (per token again:
FD, regressor, camera, body model). ``siam_jax.inference.streaming`` caches ``encode``'s output
per frame and runs the other two over the cached window.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import ml_collections
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from siam_jax.body import rotations
from siam_jax.models import camera as camera_lib
from siam_jax.models import tokens as tokens_lib
from siam_jax.models.center_head import CenterHead
from siam_jax.models.embeddings import FrameEmbedding, PositionEmbedding, normalised_cell_xy
from siam_jax.models.fd import FD
from siam_jax.models.hrnet import HRNet
from siam_jax.models.mean_params import NUM_JOINTS, get_mean_params
from siam_jax.models.neck import Neck
from siam_jax.models.regressor import IterativeRegressor
from siam_jax.models.sia import SIA
from siam_jax.models.temporal import TemporalMixer

# torchvision / timm ImageNet statistics (timm.data.constants IMAGENET_DEFAULT_MEAN/STD): the
# HRNet weights were trained on inputs normalised with these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Centre-score threshold of a model whose config leaves model.center.threshold unset (None) and
# whose checkpoint stores none (a fixed value before issue 19; the quickstart chooses its own).
DEFAULT_CENTER_THRESHOLD = 0.25

OUTPUT_KEYS = (
    "center_heatmap",
    "scores",
    "valid",
    "centers",
    "pred_smpl_params",
    "pred_cam",
    "pred_cam_t",
    "pred_vertices",
    "pred_keypoints_3d",
    "pred_keypoints_2d",
)


class BodyConstant(nnx.Variable):
    """The SMPL body model arrays (a ``siam_jax.body.BodyModel`` pytree): constant, not trained."""


def _dtype_of(name: str):
    if name not in ("float32", "bfloat16"):
        raise ValueError(f"config.model.compute_dtype must be float32 or bfloat16, got {name!r}")
    return jnp.bfloat16 if name == "bfloat16" else None  # None: follow the inputs / params


def _make_backbone(cfg: ml_collections.ConfigDict, rngs: nnx.Rngs, dtype) -> HRNet:
    return HRNet(
        cfg.backbone.width,
        rngs=rngs,
        num_modules=tuple(cfg.backbone.num_modules),
        num_blocks=cfg.backbone.num_blocks,
        stem_width=cfg.backbone.stem_width,
        dtype=dtype,
        # config.model.backbone.remat: nnx.remat per stage-1 block and HRNet module (the one
        # place the key is read; older configs without it build without remat).
        remat=bool(cfg.backbone.get("remat", False)),
    )


class FrameEncoding(NamedTuple):
    """``SIAM.encode`` of frames [b t]: all that depends on one frame (a pytree; the streaming
    cache keeps ``tokens``, ``valid`` and ``scene`` of the window's frames)."""

    heatmap: Float[Array, "b t h w"]  # float32 centre heatmap
    scores: Float[Array, "b t k"]  # float32 heatmap score of each slot's cell
    valid: Bool[Array, "b t k"]
    cells: Int[Array, "b t k 2"]  # (x, y) feature cells of the slots
    tokens: Float[Array, "b t k d"]  # gathered features + position embedding (no frame embedding)
    scene: Float[Array, "b t hs ws c"] | None  # coarse 1/32 branch, None unless SIA reads it


class SIAM(nnx.Module):
    """The SIAM network; see DESIGN.md "The model, stage by stage" and docs/model.md."""

    def __init__(
        self,
        cfg: ml_collections.ConfigDict,
        *,
        body_model,
        rngs: nnx.Rngs,
        backbone: nnx.Module | None = None,
    ):
        dtype = _dtype_of(str(cfg.compute_dtype))
        self.compute_dtype = jnp.bfloat16 if dtype is not None else jnp.float32
        d = cfg.token_dim
        width = cfg.backbone.width
        self.clip_len = int(cfg.clip_len)
        self.max_instances = int(cfg.max_instances)
        # None: DEFAULT_CENTER_THRESHOLD (restore_model applies a checkpoint's stored one).
        threshold = cfg.center.get("threshold")
        self.threshold = DEFAULT_CENTER_THRESHOLD if threshold is None else float(threshold)
        self.fov_degrees = float(cfg.fov_degrees)
        self.backbone = backbone if backbone is not None else _make_backbone(cfg, rngs, dtype)
        self.neck = Neck(
            width,
            d,
            rngs=rngs,
            dtype=dtype,
            context_blocks=cfg.neck.context_blocks,
            context_dilation=cfg.neck.context_dilation,
        )
        self.center_head = CenterHead(d, cfg.center.hidden, rngs=rngs, dtype=dtype)
        self.pos_embed = PositionEmbedding(d, rngs=rngs, dtype=dtype)
        self.frame_embed = FrameEmbedding(self.clip_len, d, rngs=rngs)
        tp = cfg.temporal
        self.temporal = (
            TemporalMixer(d, num_heads=tp.num_heads, mlp_ratio=tp.mlp_ratio, rngs=rngs, dtype=dtype)
            if tp.enabled
            else None
        )
        self.sia = _make_sia(cfg, rngs, dtype) if cfg.sia.enabled else None
        self.fd = FD(d, cfg.fd.hidden, rngs=rngs, dtype=dtype) if cfg.fd.enabled else None
        self.regressor = IterativeRegressor(
            d,
            cfg.regressor.hidden,
            get_mean_params(cfg.regressor.mean_params_path),
            num_iterations=cfg.regressor.num_iterations,
            rngs=rngs,
            dtype=dtype,
        )
        self.body = BodyConstant(body_model)

    @property
    def reads_scene(self) -> bool:
        """Whether ``interact`` reads the coarse scene map (SIA's scene cross-attention)."""
        return self.sia is not None and self.sia.scene is not None

    # ------------------------------------------------------------------ checks
    def check_images(self, images: Float[Array, "b t H W 3"]) -> None:
        if images.ndim != 5 or images.shape[-1] != 3:
            raise ValueError(f"images must be [b t H W 3], got {images.shape}")
        height, width = images.shape[2:4]
        if height != width or height % 32:
            raise ValueError(
                f"images must be square with a side divisible by 32, got {height}x{width}"
            )

    def intrinsics_or_default(self, intrinsics, b: int, t: int, size: int):
        """``intrinsics`` [b t 3 3] checked, or the default camera (``fov_degrees``) of size."""
        if intrinsics is None:
            intrinsics = jnp.broadcast_to(
                camera_lib.default_intrinsics(size, self.fov_degrees), (b, t, 3, 3)
            )
        if intrinsics.shape != (b, t, 3, 3):
            raise ValueError(f"intrinsics must be [{b} {t} 3 3], got {intrinsics.shape}")
        return intrinsics.astype(jnp.float32)

    # ------------------------------------------------------------------ stages
    def features(self, images: Float[Array, "b t H W 3"]):
        """Backbone + neck over all b*t frames: (F [n h w d], coarse 1/32 branch [n hs ws c])."""
        b, t, height, width, _ = images.shape
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
        std = jnp.asarray(IMAGENET_STD, jnp.float32)
        x = ((images.astype(jnp.float32) - mean) / std).astype(self.compute_dtype)
        branches = self.backbone(x.reshape(b * t, height, width, 3))
        return self.neck(branches), branches[3]

    def select_tokens(self, heatmap, gt_center_cells, gt_valid, b, t):
        """Cells, scores and validity of the k token slots per frame ([n k ...] with n = b*t)."""
        k = self.max_instances
        if gt_center_cells is not None:
            if gt_valid is None:
                raise ValueError("gt_center_cells given without gt_valid")
            if gt_center_cells.shape != (b, t, k, 2) or gt_valid.shape != (b, t, k):
                raise ValueError(
                    f"gt_center_cells {gt_center_cells.shape} / gt_valid {gt_valid.shape} must be "
                    f"[{b} {t} {k} 2] / [{b} {t} {k}] (k = config.model.max_instances)"
                )
            cells = gt_center_cells.reshape(b * t, k, 2).astype(jnp.int32)
            scores = tokens_lib.gather_scores(heatmap, cells)
            valid = gt_valid.reshape(b * t, k).astype(bool)
        else:
            cells, scores, is_peak = tokens_lib.topk_peaks(heatmap, k)
            valid = is_peak & (scores > self.threshold)
        return cells, scores, valid

    def encode(
        self,
        images: Float[Array, "b t H W 3"],
        gt_center_cells: Int[Array, "b t k 2"] | None = None,
        gt_valid: Bool[Array, "b t k"] | None = None,
    ) -> FrameEncoding:
        """Per-frame stage: backbone, neck, centre head, slot selection, token gathering."""
        self.check_images(images)
        b, t = images.shape[:2]
        k = self.max_instances
        feats, coarse = self.features(images)
        _n, h, w, d = feats.shape
        heatmap = self.center_head(feats)
        cells, scores, valid = self.select_tokens(heatmap, gt_center_cells, gt_valid, b, t)
        tok = tokens_lib.gather_cells(feats, cells)
        tok = tok + self.pos_embed(normalised_cell_xy(cells, h, w)).astype(tok.dtype)
        return FrameEncoding(
            heatmap=heatmap.reshape(b, t, h, w).astype(jnp.float32),
            scores=scores.reshape(b, t, k).astype(jnp.float32),
            valid=valid.reshape(b, t, k),
            cells=cells.reshape(b, t, k, 2),
            tokens=tok.reshape(b, t, k, d),
            scene=coarse.reshape(b, t, *coarse.shape[1:]) if self.reads_scene else None,
        )

    def embed_frames(self, tokens: Float[Array, "b t k d"]) -> Float[Array, "b t k d"]:
        """Add the frame embedding of each frame's index in the window (0 = oldest)."""
        return tokens + self.frame_embed(tokens.shape[1])[None, :, None].astype(tokens.dtype)

    def interact(
        self,
        tokens: Float[Array, "b t k d"],
        valid: Bool[Array, "b t k"],
        scene: Float[Array, "b t hs ws c"] | None,
    ) -> Float[Array, "b t k d"]:
        """Window stage, the only one that crosses frames: temporal path, then SIA. Padded
        tokens (``valid`` False) are never attended to, so valid tokens do not depend on them."""
        if self.temporal is not None:
            tokens = self.temporal(tokens, valid)
        if self.sia is not None:
            tokens = self.sia(tokens, valid, scene)
        return tokens

    def factor_features(self, tokens, valid):
        """(pose, shape, camera) features and the decorrelation term; the token itself w/o FD."""
        if self.fd is None:
            return (tokens, tokens, tokens), jnp.zeros((), jnp.float32)
        return self.fd(tokens, valid)

    def decode(
        self,
        tokens: Float[Array, "b t k d"],
        valid: Bool[Array, "b t k"],
        cells: Int[Array, "b t k 2"],
        intrinsics: Float[Array, "b t 3 3"],
        image_size: int,
    ) -> tuple[dict, dict]:
        """Per-frame stage on interacted tokens: FD, regressor, camera, body model.

        Returns (the per-slot outputs, aux); FD pools within a frame, so frames are independent.
        """
        b, t, k, _ = tokens.shape
        (f_pose, f_shape, f_cam), decor = self.factor_features(tokens, valid)
        pose6d, betas, cam = self.regressor(f_pose, f_shape, f_cam)
        rotmats = rotations.rot6d_to_matrix(pose6d.reshape(b, t, k, NUM_JOINTS, 6))
        centers = tokens_lib.cell_centers_px(cells)
        k_mat = intrinsics.astype(jnp.float32)[:, :, None]  # [b t 1 3 3]
        cam_t = camera_lib.cam_to_translation(cam, centers, k_mat, image_size)
        body = self.body.get_value()(
            betas=betas,
            body_pose=rotmats[..., 1:, :, :],
            global_orient=rotmats[..., :1, :, :],
            transl=cam_t,
        )
        joints = body.joints[..., :NUM_JOINTS, :]
        outputs = {
            "centers": centers,
            "pred_smpl_params": {
                "global_orient": rotmats[..., :1, :, :],
                "body_pose": rotmats[..., 1:, :, :],
                "betas": betas,
            },
            "pred_cam": cam,
            "pred_cam_t": cam_t,
            "pred_vertices": body.vertices,
            "pred_keypoints_3d": joints,
            "pred_keypoints_2d": camera_lib.perspective_projection(joints, k_mat),
        }
        aux = {
            "fd_decorrelation": decor.astype(jnp.float32),
            "pose_features": f_pose,
            "shape_features": f_shape,
            "cam_features": f_cam,
        }
        return outputs, aux

    def __call__(
        self,
        images: Float[Array, "b t H W 3"],
        *,
        gt_center_cells: Int[Array, "b t k 2"] | None = None,
        gt_valid: Bool[Array, "b t k"] | None = None,
        intrinsics: Float[Array, "b t 3 3"] | None = None,
        return_aux: bool = False,
    ):
        """The full-window forward: ``encode`` -> ``embed_frames`` -> ``interact`` -> ``decode``."""
        self.check_images(images)
        b, t, size = images.shape[:3]
        if t > self.clip_len:
            raise ValueError(f"clip of {t} frames exceeds config.model.clip_len={self.clip_len}")
        intrinsics = self.intrinsics_or_default(intrinsics, b, t, size)
        enc = self.encode(images, gt_center_cells, gt_valid)
        tokens_in = self.embed_frames(enc.tokens)
        tok = self.interact(tokens_in, enc.valid, enc.scene)
        per_slot, aux = self.decode(tok, enc.valid, enc.cells, intrinsics, size)
        outputs = {
            "center_heatmap": enc.heatmap,
            "scores": enc.scores,
            "valid": enc.valid,
            **per_slot,
        }
        if not return_aux:
            return outputs
        return outputs, {"tokens_in": tokens_in, "tokens": tok, **aux}


def _make_sia(cfg: ml_collections.ConfigDict, rngs: nnx.Rngs, dtype) -> SIA:
    s = cfg.sia
    return SIA(
        cfg.token_dim,
        num_layers=s.num_layers,
        num_heads=s.num_heads,
        mlp_ratio=s.mlp_ratio,
        mode=s.mode,
        scene_channels=8 * cfg.backbone.width if s.scene_cross_attention else None,
        dropout=s.dropout,
        rngs=rngs,
        dtype=dtype,
    )


def load_body_model(cfg: ml_collections.ConfigDict):
    """The body model named by ``config.model.body_model`` (procedural when no path is set)."""
    from siam_jax.body import body_model_from_config

    return body_model_from_config(cfg.body_model)


def build_model(cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs, body_model=None) -> SIAM:
    """``build_model(config.model, rngs=...)``: the SIAM model of the config."""
    if body_model is None:
        body_model = load_body_model(cfg)
    return SIAM(cfg, body_model=body_model, rngs=rngs)
