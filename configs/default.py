"""Shared defaults of every siam-jax config (not run on its own).

Configs import this module, call ``get_config()`` and override a few fields (flax imagenet style).
Every field lives here, so a misspelled override (``--config.modle.x=1``) fails on the locked
config instead of being silently ignored.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Root of the real-data files of the poster recipe (configs/recipe.py); "" = not used.
    config.data_root = ""
    # The procedural body with a real dataset is refused (siam_jax.training.preflight) unless
    # this says so: a smoke test of the real pipeline without the licensed SMPL files.
    config.allow_procedural_body = False

    # ---------------------------------------------------------------- model
    config.model = m = ml_collections.ConfigDict()
    m.input_size = 512  # square network input, pixels
    m.clip_len = 1  # t: 1 = frame setting, >1 = video setting
    m.max_instances = 16  # k: instance slots per frame (static shapes)
    m.token_dim = 256  # d
    m.fov_degrees = 60.0  # default camera: f = (input_size / 2) / tan(fov / 2)
    m.backbone = ml_collections.ConfigDict()
    m.backbone.width = 32  # HRNet-W32 | W48 | W18; small widths for tests
    m.backbone.num_modules = (1, 1, 4, 3)  # modules in stages 1-4 (standard HRNet)
    m.backbone.num_blocks = 4  # residual blocks per branch
    m.backbone.stem_width = 64  # stem convs and stage-1 planes (64 in every timm HRNet)
    m.backbone.pretrained = ""  # PyTorch HRNet weights (timm/HigherHRNet/mmpose), "" = none
    # A HigherHRNet-style file (last module single-scale) may lack the last module's
    # lower-resolution fuse rows, which then keep their init (siam_jax.models.convert).
    m.backbone.pretrained_allow_single_scale = False
    m.backbone.remat = False  # nnx.remat per HRNet block/module: less memory, ~1 more forward
    m.neck = ml_collections.ConfigDict()
    # Dilated residual blocks on F (not in the poster; docs/choices.md "Quickstart model"):
    # body-wide context at the centre cell for backbones too shallow to carry it themselves.
    m.neck.context_blocks = 0
    m.neck.context_dilation = 2
    m.center = ml_collections.ConfigDict()
    # Score threshold for `valid` at inference. None: the one chosen on validation and stored
    # with the checkpoint (META_CENTER_THRESHOLD), else the model's 0.25; a value overrides both.
    m.center.threshold = ml_collections.config_dict.placeholder(float)
    m.center.hidden = 128
    m.sia = ml_collections.ConfigDict()
    m.sia.enabled = True
    m.sia.mode = "synchronous"  # synchronous | factorized | spatial
    m.sia.num_layers = 2
    m.sia.num_heads = 8
    m.sia.mlp_ratio = 4.0
    m.sia.scene_cross_attention = True
    m.sia.dropout = 0.0
    # Temporal path without SIA (docs/choices.md "Temporal path without SIA"): one block of
    # temporal-only attention over the window's tokens; on in the video Base / Base+FD rows.
    m.temporal = ml_collections.ConfigDict()
    m.temporal.enabled = False
    m.temporal.num_heads = 8
    m.temporal.mlp_ratio = 4.0
    m.fd = ml_collections.ConfigDict()
    m.fd.enabled = True
    m.fd.hidden = 256
    m.regressor = ml_collections.ConfigDict()
    m.regressor.num_iterations = 3
    m.regressor.hidden = 1024
    m.regressor.mean_params_path = ""  # SPIN-style smpl_mean_params.npz, "" = built-in rest pose
    m.body_model = ml_collections.ConfigDict()
    m.body_model.path = ""  # SMPL .pkl/.npz file or folder; "" = procedural model
    m.body_model.gender = "neutral"
    m.body_model.procedural_seed = 0
    m.body_model.h36m_regressor_path = ""  # J_regressor_h36m.npy; "" = the model's own
    m.compute_dtype = "float32"  # float32 | bfloat16 (parameters stay float32)

    # ---------------------------------------------------------------- data
    config.data = d = ml_collections.ConfigDict()
    d.data_dir = "data/tensorflow_datasets"
    d.manual_dir = "data/manual"
    d.train = [("siam_synthetic", 1.0)]  # (tfds name[:config][/split], weight) mixture
    d.train_split = "train"
    d.eval_dataset = "siam_synthetic"
    d.eval_split = "validation"
    d.num_eval_examples = 64
    d.synthetic = ml_collections.ConfigDict()
    d.synthetic.num_train = 2000
    d.synthetic.num_validation = 200
    d.synthetic.num_test = ml_collections.config_dict.placeholder(int)  # None: num_validation
    d.synthetic.image_size = 512
    d.synthetic.max_people = 5
    d.synthetic.clip_len = 8
    d.synthetic.seed = 0
    d.synthetic.depth_range = (2.0, 10.0)  # pelvis depth in metres
    d.synthetic.empty_fraction = 0.1  # share of person-free sequences (background negatives)
    # Processes that render a build (data/synthetic/parallel.py); the records do not depend on it.
    d.synthetic.build_processes = 1
    # Real-dataset builders (agora, pw3d, cmu_panoptic; docs/datasets.md): folder holding
    # SMPL_NEUTRAL / SMPL_MALE / SMPL_FEMALE .npz|.pkl; "" = <manual_dir>/body_models.
    d.real = ml_collections.ConfigDict()
    d.real.body_model_dir = ""
    d.real.agora_config = "1280x720"  # tfds config: 1280x720 | 3840x2160
    d.real.pw3d_config = "full"  # full | pw3d_occ
    d.augment = ml_collections.ConfigDict()
    d.augment.enabled = True
    d.augment.scale = (0.8, 1.2)
    d.augment.rotation_degrees = 15.0
    d.augment.flip_prob = 0.5
    d.augment.color_jitter = 0.2
    d.augment.translate = 0.1  # max shift of the image centre, fraction of input_size
    d.heatmap_sigma_min = 1.0  # Gaussian centre targets, feature cells
    d.num_workers = 0  # Grain worker processes (0 = in-process)
    d.read_threads = 4  # Grain threads reading/augmenting examples in each process
    d.prefetch_batches = 2  # examples buffered ahead, in batches
    # Keep each training record decoded in memory after its first read (siam_jax.data.
    # decoded_cache): for small sets read many times (the quickstart), never the poster mixture.
    d.cache_decoded = False

    # ---------------------------------------------------------------- training
    config.total_steps = 100_000
    config.batch_size = 32  # global
    config.log_every_steps = 50
    config.checkpoint_every_steps = 1000
    config.keep_checkpoints = 3
    config.eval_every_steps = 5000
    config.optimizer = o = ml_collections.ConfigDict()
    o.learning_rate = 1e-4
    o.warmup_steps = 1000
    o.weight_decay = 1e-4
    o.grad_clip_norm = 1.0
    o.end_learning_rate_factor = 0.01
    # micro-batches per optimizer update (optax.MultiSteps); batch_size is the update's batch
    o.accumulate_steps = 1
    o.ema_decay = 0.0  # EMA of the parameters (validation uses it); 0 = off, e.g. 0.9999
    config.init_checkpoint = ""  # siam-jax checkpoint dir to start from (after own resume)
    config.loss = w = ml_collections.ConfigDict()
    # Each term is masked by its own supervision flag (siam_jax/training/losses.py TERM_FLAGS).
    w.center = 1.0
    w.pose = 1.0  # body_pose, 23 joints (has_pose)
    # One joint of the 24 of the former joint pose loss (SPIN/ROMP: orientation is joint 0 of
    # the pose loss): 1/24 of the pose weight. has_global_orient (off for AGORA, as BEV).
    w.global_orient = 0.04
    w.betas = 0.1
    w.transl = 0.0  # L1 on SMPL transl (has_transl); 0 = off, as before (docs/choices.md)
    w.keypoints_3d = 5.0
    w.keypoints_2d = 1.0
    w.vertices = 1.0
    w.decorrelation = 0.1
    w.betas_prior = 0.001
    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 0  # eval.py's global batch (split over the devices); 0 = batch_size
    config.eval.use_ema = True  # eval.py / demo: the checkpoint's EMA weights when it keeps one
    config.profile = ml_collections.ConfigDict()
    config.profile.steps = ()  # e.g. (10, 11, 12): traced into WORKDIR/profile
    config.quickstart = False  # build siam_synthetic if absent; report vs mean-pose baseline
    config.debug = ml_collections.ConfigDict()
    config.debug.nan_at_step = -1  # >0: force a NaN loss at that step (guard-rail drills, tests)
    return config


# Table 1 ablation rows of the poster: (sia.enabled, fd.enabled).
ABLATIONS = {
    "base": (False, False),
    "sia": (True, False),
    "fd": (False, True),
    "full": (True, True),
}


def poster_config(width: int, clip_len: int, ablation: str = "full") -> ml_collections.ConfigDict:
    """The defaults with HRNet-W``width``, ``clip_len`` frames and a Table 1 ablation row."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {sorted(ABLATIONS)}, got {ablation!r}")
    config = get_config()
    config.model.backbone.width = width
    config.model.clip_len = clip_len
    config.model.sia.enabled, config.model.fd.enabled = ABLATIONS[ablation]
    return config
