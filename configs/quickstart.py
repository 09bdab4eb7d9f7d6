"""Quickstart: a small SIAM trained on the synthetic dataset on a laptop-class CPU, then evaluated.

    make quickstart
    # = python train.py --config configs/quickstart.py --workdir workdirs/quickstart

Builds ``siam_synthetic/quickstart`` (1600 train / 200 validation independent frames at 128 px,
15% of them person-free, a quarter of the backgrounds pixel noise, no test split) into
``data/tensorflow_datasets`` if absent, trains a width-8 HRNet SIAM at 128x128 input, evaluates
on the validation split and prints the validation MPJPE next to the mean-pose baseline (the
regressor's starting parameters at the GT translation), then the detection precision / recall /
F1 and false detections per person-free frame (and per frame of pure pixel noise) at the centre
threshold of best validation F1, which is stored with the checkpoint (the demo and eval.py
apply it); all go to ``workdirs/quickstart/quickstart.json``. Budget: at most 12 minutes in all
on a 2-core CPU; see docs/training.md for the measured time and numbers and
docs/choices.md ("Quickstart model and budget") for why these values.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.quickstart = True

    m = config.model
    m.input_size = 128  # 16x16 feature cells at stride 8
    m.clip_len = 1
    m.max_instances = 3  # = data.synthetic.max_people
    m.token_dim = 64
    m.backbone.width = 8
    # 16 instead of timm's 64 channels in the stem and stage 1, whose bottlenecks at 1/4
    # resolution otherwise take most of the step time of so narrow a network (2.2x faster).
    m.backbone.stem_width = 16
    m.backbone.num_modules = (1, 1, 1, 1)
    m.backbone.num_blocks = 1
    # One dilated residual block on F: so shallow a backbone hardly carries the head and chest
    # (the facing cues) to the pelvis cell the token is read at (docs/training.md).
    m.neck.context_blocks = 1
    m.center.hidden = 32
    m.sia.num_layers = 1
    m.sia.num_heads = 4
    m.sia.mlp_ratio = 2.0
    m.fd.hidden = 64
    m.regressor.hidden = 256

    d = config.data
    # A builder config of its own ("quickstart"), built from d.synthetic on first use.
    d.train = [("siam_synthetic:quickstart", 1.0)]
    d.eval_dataset = "siam_synthetic:quickstart"
    d.eval_split = "validation"
    d.synthetic.num_train = 1600
    # 200 validation frames: about 30 person-free ones to measure false detections on (the
    # target is < 0.1 per frame) and ~400 persons for MPJPE; the quickstart never reads a test
    # split, so none is built (100 frames, ~6 s of the build).
    d.synthetic.num_validation = 200
    d.synthetic.num_test = 0
    # Background-only frames, so the centre head learns "nobody here" (docs/data.md).
    d.synthetic.empty_fraction = 0.15
    d.synthetic.image_size = 128
    d.synthetic.max_people = 3
    # Independent frames: the quickstart trains a frame model, and clips of 8 nearly identical
    # frames would leave only 200 distinct scenes to learn from (and 13 to validate on).
    d.synthetic.clip_len = 1
    # People 2-4 m away: about 50-110 px tall in the 128 px frame, the scale at which a 512 px
    # poster input sees most people. Farther ones (2.5-6 m before, ~35 px) left the 16x16
    # feature map too few cells per person to read a body pose from: this range took the
    # quickstart from 241 to 232 mm at 1500 steps and 223 to 213 mm at 3000 (docs/choices.md
    # "Quickstart model and budget").
    d.synthetic.depth_range = (2.0, 4.0)
    # Two rendering processes: the rasteriser keeps about one core busy (build ~40 s faster).
    d.synthetic.build_processes = 2
    d.num_eval_examples = 200
    d.read_threads = 2
    # 1600 records read ~30 times each: decode them once (about 15 ms of host CPU per step back
    # on 2 cores; docs/choices.md "Quickstart step profile").
    d.cache_decoded = True

    config.batch_size = 16
    # 2900 steps: the 12-minute budget with ~30 s to spare on a quiet 2-core machine (the
    # 3000-step run of 2026-12-07 took 11 min 49 s; docs/training.md).
    config.total_steps = 2900
    config.log_every_steps = 50
    config.checkpoint_every_steps = 1000
    # One validation, at the end (a mid-run one cost a pass and a report nobody reads).
    config.eval_every_steps = config.total_steps
    config.keep_checkpoints = 2
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 50
    config.optimizer.weight_decay = 1e-4
    # No vertex term: the GT meshes and the predicted skinning it needs took about a third of
    # the step, and the 3D joints carry the same pose signal (the term is then not computed).
    config.loss.vertices = 0.0
    # 3D joints at 3x the default weight (15): the one loss-weight change that moved validation
    # MPJPE beyond noise at the full schedule (219.9 -> 211.7 mm; docs/choices.md "Quickstart
    # model and budget", where the model changes tried on 2026-12-07 are listed).
    config.loss.keypoints_3d = 15.0
    return config
