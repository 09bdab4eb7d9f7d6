"""siam_synthetic: ground-truth consistency, visibility vs render, determinism, TFDS round trip."""

import numpy as np

from siam_jax.data.synthetic import SceneConfig, generate_example

CFG = SceneConfig(image_size=64, max_people=4, clip_len=4, seed=3)


def test_gt_self_consistent_and_visibility():
    from siam_jax.body import get_body_model

    model = get_body_model()
    for idx in (0, 5):
        ex = generate_example(idx, 0, CFG)
        p, K = ex["persons"], ex["intrinsics"]
        out = model(betas=p["betas"], body_pose=p["body_pose"],
                    global_orient=p["global_orient"], transl=p["transl"])  # fmt: skip
        np.testing.assert_allclose(np.asarray(out.joints), p["joints_3d"], atol=1e-5)
        proj = p["joints_3d"] @ K.T
        np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], p["joints_2d"], atol=0.5)
        pm, dm = ex["_maps"]["person"], ex["_maps"]["depth"]
        for i in range(len(p["betas"])):
            x, y = np.rint(p["joints_2d"][i, 0]).astype(int)
            if 0 <= x < 64 and 0 <= y < 64:
                # Pelvis pixel: covered by this person unless a nearer person is in front.
                assert pm[y, x] == i or dm[y, x] < p["joints_3d"][i, 0, 2]
                assert p["visibility"][i, 0] == float(
                    pm[y, x] == i or pm[y, x] < 0 or dm[y, x] >= p["joints_3d"][i, 0, 2]
                )
        assert (p["occlusion"] >= 0).all() and (p["occlusion"] <= 100).all()
        assert ex["frame_index"] == idx % CFG.clip_len


def test_deterministic_and_order_independent():
    a = generate_example(6, 1, CFG)
    generate_example(2, 1, CFG)
    b = generate_example(6, 1, CFG)
    assert (a["image"] == b["image"]).all()
    for k in a["persons"]:
        np.testing.assert_array_equal(a["persons"][k], b["persons"][k])
    c = generate_example(6, 1, SceneConfig(image_size=64, max_people=4, clip_len=4, seed=4))
    assert not np.array_equal(a["image"], c["image"])


def test_tfds_builder_roundtrip(tmp_path):
    import tensorflow_datasets as tfds

    from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic

    b = SiamSynthetic(config="tiny", data_dir=str(tmp_path), file_format="array_record")
    b.download_and_prepare()
    src = tfds.data_source("siam_synthetic/tiny", split="validation", data_dir=str(tmp_path))
    assert len(src) == 8
    ex = src[5]
    assert ex["image"].shape == (48, 48, 3) and int(ex["frame_index"]) == 1
    ref = generate_example(5, 1, b._scene())
    assert (ex["image"] == ref["image"]).all()


def test_build_in_two_processes_writes_the_serial_records(tmp_path):
    """num_processes=2 renders in a spawn pool: every record equals the serial build's."""
    import tensorflow_datasets as tfds

    from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic

    for name, procs in (("serial", 1), ("pool", 2)):
        SiamSynthetic(
            config="tiny", data_dir=str(tmp_path / name), file_format="array_record",
            num_processes=procs,
        ).download_and_prepare()  # fmt: skip
    for split in ("train", "validation"):
        a, b = (
            tfds.data_source("siam_synthetic/tiny", split=split, data_dir=str(tmp_path / n))
            for n in ("serial", "pool")
        )
        assert len(a) == len(b) > 0
        for i in range(len(a)):
            ea, eb = a[i], b[i]
            assert bytes(ea["image_name"]) == bytes(eb["image_name"])
            np.testing.assert_array_equal(ea["image"], eb["image"])
            for k in ea["persons"]:
                np.testing.assert_array_equal(ea["persons"][k], eb["persons"][k], err_msg=k)


FACING_CFG = SceneConfig(image_size=96, max_people=1, clip_len=1, seed=0, depth_range=(3.0, 3.0))


def _render_facing(monkeypatch, yaw: float) -> dict:
    """One person 3 m in front of the camera turned by ``yaw`` (0 = facing the camera)."""
    from siam_jax.data.synthetic import scene

    original = scene._sequence

    def one_person(cfg, split_seed, seq):
        p = original(cfg, split_seed, seq)
        p["yaw0"][:] = yaw
        p["yaw_rate"][:] = 0.0
        p["lean"][:] = 0.0
        p["start"][:, :2] = 0.0
        return p

    monkeypatch.setattr(scene, "_sequence", one_person)
    return generate_example(2, 0, FACING_CFG)


def test_facing_direction_is_visible(monkeypatch):
    """Front and back differ as in real images: the face and the jacket's front panel show from the
    front only, and hair contrasts with skin (scene._body / _outfits, version 1.2.0)."""
    from siam_jax.data.synthetic import scene

    _, _, garment = scene._body(0)
    assert (garment == scene.FRONT).sum() > 50 and (garment == scene.SKIN).sum() > 50
    outfits = scene._outfits(np.random.default_rng(5), 200)
    gap = np.abs(scene._luma(outfits[:, scene.HAIR]) - scene._luma(outfits[:, scene.SKIN]))
    assert gap.min() >= 0.2
    assert (outfits[:, scene.FRONT] >= 0.75).all()  # a light T-shirt under the jacket

    def panel_fraction(yaw):
        # Lambert shading scales colours, so compare chromaticities on the torso's pixels.
        ex = _render_facing(monkeypatch, yaw)
        seq = scene._sequence(FACING_CFG, 0, 2)  # the rendered person's own outfit
        shirt, front = seq["outfits"][0, scene.SHIRT], seq["outfits"][0, scene.FRONT]
        torso = np.isin(ex["_maps"]["part"], (3, 6, 9)) & (ex["_maps"]["person"] == 0)
        px = ex["image"][torso].astype(np.float64) + 1.0
        chroma = px / px.sum(1, keepdims=True)
        ref = lambda c: (c + 1 / 255) / (c + 1 / 255).sum()  # noqa: E731
        near_front = np.linalg.norm(chroma - ref(front), axis=1)
        near_shirt = np.linalg.norm(chroma - ref(shirt), axis=1)
        return float(np.mean(near_front < near_shirt)), int(torso.sum())

    front_frac, n_front = panel_fraction(0.0)
    back_frac, n_back = panel_fraction(np.pi)
    assert n_front > 30 and n_back > 30
    assert front_frac > 0.5 and back_frac < 0.05, (front_frac, back_frac)


def test_person_free_frames_are_written_empty_with_consistent_flags(tmp_path):
    """A share of the sequences shows only the background: the builder writes those frames with
    no person at all, every frame flag consistent (all persons annotated: nobody), and the
    pipeline's targets for them are all negative (no valid slot, a zero centre heatmap)."""
    import tensorflow_datasets as tfds

    from siam_jax.data import augment, schema, targets
    from siam_jax.data.builders.siam_synthetic.builder import SiamSynthetic, SiamSyntheticConfig
    from siam_jax.data.synthetic import scene

    cfg = SiamSyntheticConfig(name="empty_test", num_train=0, num_validation=12, image_size=48,
                              max_people=3, clip_len=1, empty_fraction=0.5)  # fmt: skip
    b = SiamSynthetic(config=cfg, data_dir=str(tmp_path), file_format="array_record")
    b.download_and_prepare()
    src = tfds.data_source("siam_synthetic/empty_test", split="validation", data_dir=str(tmp_path))
    # TFDS stores the examples shuffled; the name says which sequence each one is.
    seq_of = [int(bytes(src[i]["image_name"]).decode().split("_")[1]) for i in range(len(src))]
    assert sorted(seq_of) == list(range(12))
    empty = [i for i in range(len(src)) if scene.is_empty(b._scene(), 1, seq_of[i])]
    assert 0 < len(empty) < len(src)  # both kinds present (12 draws at 0.5)
    for i in range(len(src)):
        ex = src[i]
        n = len(ex["persons"]["betas"])
        if i not in empty:
            assert n >= 1 and np.asarray(ex["persons"]["valid"]).all()
            continue
        assert n == 0, f"example {i}"
        for name in schema.STORED_PERSON_FIELDS:
            assert np.asarray(ex["persons"][name]).size == 0, name
        assert bool(ex["all_persons_annotated"]) and ex["ignore_boxes"].shape == (0, 4)
        # The image is the sequence's background (gradient, noise or stripes), nothing on it.
        bg = scene.frame_params(b._scene(), 1, seq_of[i])["background"]
        assert np.abs(ex["image"].astype(np.float64) - 255 * bg).max() <= 1.0
        assert ex["image"].std() > 0
        persons = augment.persons_from_record(ex["persons"], f"example {i}")
        t = targets.build_targets(persons, np.asarray(ex["intrinsics"]), 64, 3, 1.0)
        assert not t["person_valid"].any()
        for flag in ("valid", "has_smpl", "has_3d", "has_2d", "has_pose", "has_betas"):
            assert not np.asarray(t[flag]).any(), flag
        assert (t["center_heatmap"] == 0).all()
    # Emptiness does not change what the other sequences draw: the same scene as without it.
    full = SceneConfig(image_size=48, max_people=3, clip_len=1)
    kept = next(i for i in range(len(src)) if i not in empty)
    assert (src[kept]["image"] == generate_example(seq_of[kept], 1, full)["image"]).all()
    with np.testing.assert_raises(ValueError):
        scene.is_empty(SceneConfig(empty_fraction=1.0), 0, 0)


def test_a_share_of_backgrounds_is_pixel_noise():
    """Version 1.5.0: about a quarter of the sequences (one background kind of four) are
    independent uniform pixels, so the centre head also sees pure noise with nobody in it. Told
    apart by closed forms: independent neighbours (correlation ~0), and the std of a U(0, 1)
    scaled by the contrast c in [0.3, 1] (c / sqrt(12)); the other kinds are smooth."""
    from siam_jax.data.synthetic import scene

    cfg = SceneConfig(image_size=48, max_people=2, clip_len=1)
    noisy = 0
    for seq in range(80):
        bg = scene.frame_params(cfg, 0, seq)["background"].astype(np.float64)
        r = np.corrcoef(bg[:, :-1].ravel(), bg[:, 1:].ravel())[0, 1]
        stds = bg.reshape(-1, 3).std(axis=0)
        if abs(r) < 0.1 and (stds >= 0.3 / np.sqrt(12) - 0.01).all():
            noisy += 1
            assert (stds <= 1 / np.sqrt(12) + 0.01).all(), (seq, stds)
        else:
            # The other kinds are smooth (neighbours alike) or, where their two colours nearly
            # match, only the 3% sensor noise: never strong independent pixels.
            assert r > 0.2 or stds.max() < 0.05, (seq, r, stds)
    assert 8 <= noisy <= 34, noisy  # Binomial(80, 1/4): mean 20, sd 3.9
