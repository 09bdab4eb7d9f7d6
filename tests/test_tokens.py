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
    # siam_jax/data/targets.py: cell = floor((u + 0.5) / 8); the centre pixel must map back.
    cells = jnp.asarray(np.arange(64).reshape(32, 2) % 64, jnp.int32)
    px = np.asarray(tokens.cell_centers_px(cells))
    np.testing.assert_array_equal(np.floor((px + 0.5) / 8).astype(int), np.asarray(cells))
    # and it is the middle of the cell's pixel edges [8c, 8c + 8) (pixel centres at integers).
    np.testing.assert_allclose(px + 0.5, np.asarray(cells) * 8 + 4.0)


def test_normalised_cell_xy_is_in_unit_square():
    xy = embeddings.normalised_cell_xy(jnp.asarray([[0, 0], [7, 3]]), h=4, w=8)
    np.testing.assert_allclose(np.asarray(xy), [[1 / 16, 1 / 8], [15 / 16, 7 / 8]])
