"""Rasteriser closed-form checks: coverage and depth at pixel centres, depth order, maps."""

import numpy as np

from siam_jax.render import render_meshes

K = np.array([[100.0, 0, 15.5], [0, 100.0, 15.5], [0, 0, 1]], np.float32)


def _quad(z0, z1, half=0.1, xoff=0.0):
    # Planar quad x,y in [-half, half] (+xoff), depth varying linearly in y from z0 to z1.
    v = np.array([[-half + xoff, -half, z0], [half + xoff, -half, z0],
                  [half + xoff, half, z1], [-half + xoff, half, z1]], np.float32)  # fmt: skip
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_fronto_parallel_quad_coverage_and_depth():
    v, f = _quad(2.0, 2.0)
    r = render_meshes(v[None], f, K, 32, 32)
    # Projected square: x,y in 15.5 +- 100*0.1/2 = [10.5, 20.5]; centres 11..20 strictly inside.
    cov = np.asarray(r.person) == 0
    assert cov[11:21, 11:21].all()
    assert not cov[:10].any() and not cov[22:].any() and not cov[:, :10].any()
    assert np.allclose(np.asarray(r.depth)[cov], 2.0, atol=1e-5)
    assert np.isinf(np.asarray(r.depth)[~cov]).all()


def test_slanted_quad_perspective_depth():
    v, f = _quad(2.0, 3.0)
    r = render_meshes(v[None], f, K, 32, 32)
    d = np.asarray(r.depth)
    for y in range(32):
        for x in range(32):
            if np.isfinite(d[y, x]):
                # Ray (x - c)/f * z: plane z = 2.5 + 5 * Y  ->  z = 2.5 / (1 - 5 (y - c)/f).
                want = 2.5 / (1 - 5 * (y - 15.5) / 100.0)
                assert abs(d[y, x] - want) < 1e-4


def test_depth_order_and_person_map():
    near, f = _quad(2.0, 2.0, xoff=-0.03)
    far, _ = _quad(3.0, 3.0, xoff=0.03)
    for order in ([near, far], [far, near]):
        r = render_meshes(np.stack(order), f, K, 32, 32, colors=np.eye(3)[:2], with_alone=True)
        pm = np.asarray(r.person)
        near_id = 0 if order[0] is near else 1
        assert pm[15, 15] == near_id  # overlap region goes to the nearer quad
        assert np.isclose(np.asarray(r.depth)[15, 15], 2.0)
        assert np.asarray(r.image)[15, 15, near_id] > 0  # its colour channel
        assert (np.asarray(r.alone)[1 - near_id] >= (pm == 1 - near_id)).all()
        assert np.asarray(r.alone)[1 - near_id][15, 15]  # far quad's own silhouette covers it


def test_background_and_parts():
    v, f = _quad(2.0, 2.0)
    bg = np.full((32, 32, 3), 0.25, np.float32)
    r = render_meshes(v[None], f, K, 32, 32, background=bg, vertex_parts=np.array([0, 1, 2, 3]))
    assert np.allclose(np.asarray(r.image)[0, 0], 0.25)
    part = np.asarray(r.part)
    assert part[0, 0] == -1 and part[11, 11] == 0 and part[20, 20] == 2  # nearest vertex


def _mixed_triangles(seed, n=80):
    """Small and large triangles, some partly or wholly outside the 32 px image, some behind."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.6, 0.6, (n, 1, 3)) + np.array([0, 0, 3.0])
    centres[: n // 10, :, 2] = -1.0  # behind the camera
    scale = np.where(rng.random((n, 1, 1)) < 0.2, 0.3, 0.03)
    return (centres + scale * rng.normal(size=(n, 3, 3))).astype(np.float32)


def _full_patch(tri, Kj):
    """The direct rasterisation: every triangle, in index order, on one patch covering the
    whole image (no planning, no culling)."""
    import jax.numpy as jnp

    from siam_jax.render.raster import _rasterize

    order = jnp.arange(len(tri), dtype=jnp.int32)
    return _rasterize(jnp.asarray(tri), Kj, order, 32, 32, ((32, len(tri)),), 0)


def test_passes_by_patch_size_match_one_full_patch_pass(monkeypatch):
    import jax.numpy as jnp

    from siam_jax.render import raster

    monkeypatch.setattr(raster, "_LAYOUTS", {})
    Kj = jnp.asarray(K)
    for seed in range(3):
        tri = _mixed_triangles(seed)
        layout, order = raster.plan(tri, K, 32, 32)
        assert len(layout) >= 2 and layout[-1][1] < len(tri)  # several passes, culled ones out
        a = raster._rasterize(jnp.asarray(tri), Kj, jnp.asarray(order), 32, 32, layout, 0)
        b = _full_patch(tri, Kj)
        np.testing.assert_array_equal(np.asarray(a.tri), np.asarray(b.tri))
        np.testing.assert_array_equal(np.asarray(a.depth), np.asarray(b.depth))


def _scaled(tri, factor):
    """Each triangle scaled about its centroid in x and y (same depth, same place)."""
    c = tri.mean(1, keepdims=True)
    out = tri.copy()
    out[..., :2] = c[..., :2] + factor * (tri - c)[..., :2]
    return out


def test_a_compiled_layout_is_reused_only_where_it_covers(monkeypatch):
    import jax.numpy as jnp

    from siam_jax.render import raster

    monkeypatch.setattr(raster, "_LAYOUTS", {})
    monkeypatch.setattr(raster, "REUSE_SLACK", 1e9)  # any covering layout is cheap enough
    Kj = jnp.asarray(K)
    big = _mixed_triangles(0)
    first, _ = raster.plan(big, K, 32, 32)
    for factor in (0.5, 3.0):  # smaller triangles: covered by the first layout; larger: not
        tri = _scaled(big, factor)
        layout, order = raster.plan(tri, K, 32, 32)
        assert (layout == first) == (factor < 1), (factor, layout, first)
        a = raster._rasterize(jnp.asarray(tri), Kj, jnp.asarray(order), 32, 32, layout, 0)
        np.testing.assert_array_equal(np.asarray(a.tri), np.asarray(_full_patch(tri, Kj).tri))


def _cube(centre, half, outward=True):
    """A closed cube of 12 triangles; outward (or, flipped, inward) winding."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7],
                      [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])  # fmt: skip
    v = centre + half * corners
    # Orient every face outward: its normal must point away from the cube's centre.
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    flip = (n * (v[faces].mean(1) - centre)).sum(-1) < 0
    faces[flip] = faces[flip][:, ::-1]
    return v, faces if outward else faces[:, ::-1].copy()


def test_back_face_culling_gives_the_full_render_of_closed_meshes():
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("xyz", [25, 35, 10], degrees=True).as_matrix().astype(np.float32)
    for outward in (True, False):  # the winding's orientation is read from the volume's sign
        v1, f = _cube(np.zeros(3, np.float32), 0.08, outward)
        v2, _ = _cube(np.zeros(3, np.float32), 0.05, outward)
        v = np.stack([v1 @ rot.T + [0.02, 0, 2.0], v2 @ rot.T + [-0.06, 0.03, 1.7]])
        full = render_meshes(v.astype(np.float32), f, K, 32, 32, colors=np.eye(3)[:2])
        culled = render_meshes(v.astype(np.float32), f, K, 32, 32, colors=np.eye(3)[:2],
                               cull_back_faces=True)  # fmt: skip
        assert (np.asarray(full.person) == 1).sum() > 20 and (np.asarray(full.person) == 0).any()
        for a, b in zip(full[:4], culled[:4], strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_back_face_culling_refuses_an_open_mesh():
    import pytest

    v, f = _quad(2.0, 2.0)
    with pytest.raises(ValueError, match="closed"):
        render_meshes(v[None], f, K, 32, 32, cull_back_faces=True)
