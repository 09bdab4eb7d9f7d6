"""Token gathering: top-k peaks with 3x3 max-pool suppression, cell reads, cell-centre pixels."""

import jax.numpy as jnp
import numpy as np

from siam_jax.models import embeddings, tokens


def _numpy_peaks(hm: np.ndarray, k: int):
    """Brute force: a cell is a peak if no 3x3 neighbour is larger; sort by score."""
    h, w = hm.shape
    found = []
    for y in range(h):
        for x in range(w):
            nb = hm[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
            if hm[y, x] >= nb.max():
                found.append((hm[y, x], x, y))
    found.sort(key=lambda p: -p[0])
    return found[:k]


def test_topk_peaks_match_brute_force():
    rng = np.random.default_rng(0)
    hm = rng.uniform(size=(3, 9, 7)).astype(np.float32)
    cells, scores, is_peak = tokens.topk_peaks(jnp.asarray(hm), 5)
    assert np.asarray(is_peak).all()
    for i in range(3):
        ref = _numpy_peaks(hm[i], 5)
        np.testing.assert_allclose(np.asarray(scores[i]), [p[0] for p in ref], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(cells[i]), [(p[1], p[2]) for p in ref])


def test_topk_suppresses_neighbours_and_flags_non_peaks():
    # 0.9 and 0.7 are the only 3x3 local maxima; 0.8 is the 0.9 person's neighbour
    hm = np.asarray([[[0.9, 0.8, 0.3], [0.2, 0.25, 0.35], [0.1, 0.3, 0.7]]], np.float32)
    cells, scores, is_peak = tokens.topk_peaks(jnp.asarray(hm), 4)
    np.testing.assert_array_equal(np.asarray(cells[0, :3]), [[0, 0], [2, 2], [1, 0]])
    np.testing.assert_array_equal(np.asarray(cells[0, 3]), [2, 1])
    np.testing.assert_allclose(np.asarray(scores[0]), [0.9, 0.7, 0.8, 0.35])
    # only two peaks: the 0.8 neighbour ranks after them and is flagged, though it scores high
    np.testing.assert_array_equal(np.asarray(is_peak[0]), [True, True, False, False])


def test_gather_cells_reads_x_y():
    feats = jnp.arange(2 * 4 * 5 * 3, dtype=jnp.float32).reshape(2, 4, 5, 3)
    cells = jnp.asarray([[[4, 0], [1, 3]], [[0, 0], [2, 1]]], jnp.int32)
    out = np.asarray(tokens.gather_cells(feats, cells))
    f = np.asarray(feats)
    np.testing.assert_array_equal(out[0, 0], f[0, 0, 4])
    np.testing.assert_array_equal(out[0, 1], f[0, 3, 1])
    np.testing.assert_array_equal(out[1, 1], f[1, 1, 2])


def test_cell_centre_pixels_round_trip_the_data_convention():
    # siam_jax/data/targets.py assigns a pixel to its nearest cell centre: the centre maps back.
    from siam_jax.data import targets

    cells = jnp.asarray(np.arange(64).reshape(32, 2) % 64, jnp.int32)
    px = np.asarray(tokens.cell_centers_px(cells))
    np.testing.assert_array_equal(targets.cell_of_pixel(px, 64), np.asarray(cells))
    # closed form of the 3x3 / stride-2 / pad-1 stack: centre 8c (not 8c + 3.5)
    np.testing.assert_allclose(px, np.asarray(cells) * 8.0)
    # pixels up to 4 px either side of a centre go to that cell
    np.testing.assert_array_equal(targets.cell_of_pixel(px + 3.9, 64), np.asarray(cells))
    np.testing.assert_array_equal(targets.cell_of_pixel(px - 4.0, 64), np.asarray(cells))


def test_receptive_field_centre_closed_form():
    # one layer: output i centred on s i + (k - 1) / 2 - p
    assert tokens.receptive_field_centre(((3, 2, 1),)) == (2, 0.0)
    assert tokens.receptive_field_centre(((4, 2, 1),)) == (2, 0.5)
    # two layers (k=2, s=2, p=0) twice: centres 0.5 then 2 * 0.5 + 0.5 * 2 = 2 -> 4c + 1.5
    assert tokens.receptive_field_centre(((2, 2, 0), (2, 2, 0))) == (4, 1.5)
    assert (tokens.FEATURE_STRIDE, tokens.CELL_CENTRE_OFFSET) == (8, 0.0)


def test_feature_stack_is_the_built_network():
    from flax import nnx

    from siam_jax.models import hrnet, neck

    net = hrnet.HRNet(4, num_modules=(1, 1, 1, 1), num_blocks=1, stem_width=8, rngs=nnx.Rngs(0))
    nk = neck.Neck(4, 8, rngs=nnx.Rngs(0))
    built = [(c.kernel_size, c.stride, c.padding) for c in (net.conv1, net.conv2)]
    d = nk.down
    built.append((d.kernel_size[0], d.strides[0], d.padding[0][0]))
    assert tuple(built) == tokens.FEATURE_STACK


def test_cell_centre_is_the_centroid_of_a_uniform_conv_stack():
    # Independent numeric check: uniform 3x3 kernels (weights 1/9) over a ramp image x(u) = u
    # give, at interior cells, the mean input coordinate of the receptive field = its centre.
    import jax

    x = jnp.broadcast_to(jnp.arange(128, dtype=jnp.float32)[None, :], (128, 128))[None, ..., None]
    for k, s, p in tokens.FEATURE_STACK:
        w = jnp.full((k, k, 1, 1), 1.0 / (k * k), jnp.float32)
        x = jax.lax.conv_general_dilated(
            x, w, (s, s), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    row = np.asarray(x[0, 8, :, 0])
    c = np.arange(row.shape[0])
    interior = (c >= 2) & (c <= row.shape[0] - 3)
    centres = np.asarray(tokens.cell_centers_px(jnp.stack([c, c], -1)))[:, 0]
    np.testing.assert_allclose(row[interior], centres[interior], atol=1e-4)


def test_normalised_cell_xy_is_in_unit_square():
    xy = embeddings.normalised_cell_xy(jnp.asarray([[0, 0], [7, 3]]), h=4, w=8)
    np.testing.assert_allclose(np.asarray(xy), [[1 / 16, 1 / 8], [15 / 16, 7 / 8]])
