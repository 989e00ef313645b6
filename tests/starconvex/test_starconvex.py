"""Rays, distance targets, NMS and rasterisation of star-convex objects."""

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from deepscope.errors import ConfigError, InputError
from deepscope.starconvex import (
    Painter,
    draw_labels,
    non_maximum_suppression,
    object_probability,
    ray_distances,
    rays_2d,
    rays_3d,
)


def two_nuclei() -> np.ndarray:
    labels = np.zeros((64, 80), np.int32)
    labels[disk((20, 20), 8)] = 1
    labels[ellipse(40, 50, 6, 14)] = 2
    return labels


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_rays_2d_are_unit_vectors_at_equal_angles():
    rays = rays_2d(8)
    assert rays.vectors.shape == (8, 2)
    assert np.allclose(np.linalg.norm(rays.vectors, axis=1), 1)
    assert np.allclose(rays.vectors[0], [0, 1])  # first ray along +x
    assert np.allclose(rays.vectors[2], [1, 0])  # a quarter turn later along +y


def test_rays_3d_cover_the_sphere_and_shrink_along_z_with_anisotropy():
    rays = rays_3d(96, (2.0, 1.0, 1.0))
    physical = rays.vectors * [2.0, 1.0, 1.0]
    assert np.allclose(np.linalg.norm(physical, axis=1), 1)
    assert abs(physical.mean(axis=0)).max() < 0.05  # evenly spread
    assert rays.faces.shape == (2 * 96 - 4, 3)  # a closed triangulated sphere


def test_too_few_rays_is_a_config_error():
    with pytest.raises(ConfigError):
        rays_2d(2)
    with pytest.raises(ConfigError):
        rays_3d(96, (0.0, 1.0, 1.0))


def test_ray_distances_of_a_disk_equal_its_radius():
    labels = two_nuclei()
    dist = ray_distances(labels, rays_2d(32))
    assert dist.shape == (32, 64, 80)
    assert np.allclose(dist[:, 20, 20], 8, atol=1)
    assert dist[:, labels == 0].max() == 0


def test_ray_distances_on_an_output_grid_sample_every_other_pixel():
    labels = two_nuclei()
    full = ray_distances(labels, rays_2d(16))
    on_grid = ray_distances(labels, rays_2d(16), grid=2)
    assert on_grid.shape == (16, 32, 40)
    assert np.array_equal(on_grid, full[:, 1::2, 1::2])


def test_ray_distances_need_labels_of_the_rays_dimension():
    with pytest.raises(InputError):
        ray_distances(np.zeros((4, 4, 4), int), rays_2d(8))


def test_object_probability_is_one_at_each_centre_and_zero_outside():
    labels = two_nuclei()
    prob = object_probability(labels, ray_distances(labels, rays_2d(32)))
    assert prob[20, 20] == pytest.approx(1.0)
    assert prob[40, 50] == pytest.approx(1.0)
    assert prob[labels == 0].max() == 0
    assert 0 < prob[20, 13] < 0.3  # near the border


def test_polygons_from_true_distances_redraw_the_objects():
    labels = two_nuclei()
    rays = rays_2d(32)
    dist = ray_distances(labels, rays)
    centres = np.array([[20.0, 20.0], [40.0, 50.0]])
    drawn = draw_labels(Painter(rays), centres, dist[:, [20, 40], [20, 50]].T, labels.shape)
    assert iou(drawn == 1, labels == 1) > 0.93
    assert iou(drawn == 2, labels == 2) > 0.9


def test_nms_keeps_one_candidate_per_object_from_every_pixel():
    labels = two_nuclei()
    rays = rays_2d(32)
    dist = ray_distances(labels, rays)
    prob = object_probability(labels, dist)
    ys, xs = np.nonzero(labels)
    centres = np.stack([ys, xs], axis=1).astype(float)
    kept = non_maximum_suppression(
        Painter(rays), centres, dist[:, ys, xs].T, prob[ys, xs], labels.shape, 0.4
    )
    assert len(kept) == 2
    assert sorted(labels[ys[kept], xs[kept]]) == [1, 2]


def test_nms_keeps_touching_objects_that_barely_overlap():
    rays = rays_2d(16)
    centres = np.array([[20.0, 20.0], [20.0, 35.0]])
    dists = np.full((2, 16), 9.0)  # radius 9, 15 apart: a small overlap
    kept = non_maximum_suppression(
        Painter(rays), centres, dists, np.array([0.9, 0.8]), (40, 60), 0.3
    )
    assert list(kept) == [0, 1]
    kept = non_maximum_suppression(
        Painter(rays), centres, dists, np.array([0.9, 0.8]), (40, 60), 0.01
    )
    assert list(kept) == [0]


def test_nms_on_an_output_grid_matches_full_resolution():
    labels = two_nuclei()
    rays = rays_2d(32)
    dist = ray_distances(labels, rays, grid=2)
    prob = object_probability(labels, dist, grid=2)
    iy, ix = np.nonzero(prob > 0.5)
    centres = np.stack([iy, ix], axis=1) * 2.0 + 1
    kept = non_maximum_suppression(
        Painter(rays), centres, dist[:, iy, ix].T, prob[iy, ix], labels.shape, 0.4, grid=2
    )
    drawn = draw_labels(Painter(rays), centres[kept], dist[:, iy[kept], ix[kept]].T, labels.shape)
    assert len(kept) == 2
    assert iou(drawn > 0, labels > 0) > 0.85


def test_higher_scores_win_where_objects_overlap():
    rays = rays_2d(16)
    centres = np.array([[20.0, 20.0], [20.0, 30.0]])
    drawn = draw_labels(Painter(rays), centres, np.full((2, 16), 8.0), (40, 50))
    assert drawn[20, 25] == 1  # the first (best) object keeps the shared pixels
    assert drawn[20, 35] == 2


def test_an_object_hidden_under_earlier_ones_is_dropped_and_labels_stay_consecutive():
    rays = rays_2d(16)
    centres = np.array([[20.0, 20.0], [20.0, 21.0], [20.0, 40.0]])
    radii = np.array([[9.0] * 16, [3.0] * 16, [5.0] * 16])  # the second lies inside the first
    drawn = draw_labels(Painter(rays), centres, radii, (40, 50))
    assert set(np.unique(drawn)) == {0, 1, 2}
    assert drawn[20, 21] == 1 and drawn[20, 40] == 2


def test_many_thousands_of_candidates_stay_fast_enough_to_test():
    rng = np.random.default_rng(0)
    n = 200_000
    centres = rng.uniform(0, 2000, (n, 2))
    dists = rng.uniform(3, 8, (n, 32)).astype(np.float32)
    kept = non_maximum_suppression(
        Painter(rays_2d(32)), centres, dists, rng.random(n), (2000, 2000), 0.3, grid=2
    )
    assert 10_000 < len(kept) < n


def test_polyhedra_from_true_distances_redraw_3d_objects():
    zz, yy, xx = np.mgrid[:30, :50, :50]
    vol = np.zeros((30, 50, 50), np.int32)
    vol[((zz - 15) * 2.2) ** 2 + (yy - 25) ** 2 + (xx - 20) ** 2 < 100] = 1
    vol[((zz - 12) * 2.2) ** 2 + (yy - 25) ** 2 + (xx - 38) ** 2 < 64] = 2
    rays = rays_3d(96, (2.2, 1.0, 1.0))
    dist = ray_distances(vol, rays)
    prob = object_probability(vol, dist)
    zs, ys, xs = np.nonzero(vol)
    centres = np.stack([zs, ys, xs], axis=1).astype(float)
    painter = Painter(rays)
    kept = non_maximum_suppression(
        painter, centres, dist[:, zs, ys, xs].T, prob[zs, ys, xs], vol.shape, 0.4
    )
    assert len(kept) == 2
    drawn = draw_labels(painter, centres[kept], dist[:, zs[kept], ys[kept], xs[kept]].T, vol.shape)
    for k in (1, 2):
        best = max(iou(drawn == j, vol == k) for j in (1, 2))
        assert best > 0.85
