import numpy as np
import pytest

from siam_jax.inference import media


def _frames(n, h=48, w=64):
    """Smooth frames (codec-friendly) with a bright square moving right."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        f = np.stack([xx * 3, yy * 4, np.full_like(xx, 60)], -1).astype(np.uint8)
        f[10:26, 8 + 8 * i : 24 + 8 * i] = 250
        out.append(f)
    return out


def test_video_round_trip(tmp_path):
    frames = _frames(5)
    path = tmp_path / "clip.mp4"
    with media.VideoWriter(path, fps=25) as writer:
        for f in frames:
            writer.write(f)
    source = media.open_source(path)
    assert source.kind == "video" and abs(source.fps - 25) < 1e-6
    decoded = [f.image for f in media.iter_frames(source)]
    assert len(decoded) == 5 and decoded[0].shape == (48, 64, 3)
    # lossy codec: close to the original, far from a different frame
    err_same = np.abs(decoded[2].astype(float) - frames[2]).mean()
    err_other = np.abs(decoded[2].astype(float) - frames[0]).mean()
    assert err_same < err_other / 2
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_folder_and_image_sources(tmp_path):
    for i, f in enumerate(_frames(3)):
        media.write_image(tmp_path / f"img_{i}.png", f)
    source = media.open_source(tmp_path)
    assert source.kind == "folder" and source.num_frames == 3
    names = [f.name for f in media.iter_frames(source)]
    assert names == ["img_0", "img_1", "img_2"]
    single = list(media.iter_frames(media.open_source(tmp_path / "img_1.png")))
    np.testing.assert_array_equal(single[0].image, _frames(3)[1])


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        media.open_source(tmp_path / "missing.mp4")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"broken\.png"):
        list(media.iter_frames(media.open_source(bad)))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported input"):
        media.open_source(tmp_path / "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        media.open_source(empty)


def test_obj_writer(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    f = np.array([[0, 1, 2]])
    media.write_obj(tmp_path / "m.obj", v, f)
    text = (tmp_path / "m.obj").read_text().splitlines()
    assert text[-1] == "f 1 2 3" and text[1].startswith("v 1.000000 0.000000")


def test_list_inputs_batch_of_videos_and_refuses_a_mixed_folder(tmp_path):
    for name in ("b.mp4", "a.mov"):
        (tmp_path / "v" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "v" / name).write_bytes(b"")
    inputs, batch = media.list_inputs(tmp_path / "v")
    assert batch and [p.name for p in inputs] == ["a.mov", "b.mp4"]
    media.write_image(tmp_path / "i" / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert media.list_inputs(tmp_path / "i") == ([tmp_path / "i"], False)
    assert media.list_inputs(tmp_path / "i" / "x.png") == ([tmp_path / "i" / "x.png"], False)
    media.write_image(tmp_path / "v" / "x.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="both videos"):
        media.list_inputs(tmp_path / "v")
