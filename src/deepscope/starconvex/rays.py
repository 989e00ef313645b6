"""Ray directions and ray-distance targets of star-convex objects, 2D and 3D.

A star-convex object is described, at a pixel inside it, by the distances from that pixel
to the object border along a fixed set of rays. Rays are given as step vectors in pixel
coordinates ``(dy, dx)`` or ``(dz, dy, dx)``; a distance ``d`` along ray ``r`` puts the
polygon (polyhedron) vertex at ``centre + d * rays[r]``. In 3D the rays are spread evenly
over the sphere in physical space and then divided by the voxel anisotropy, so distances
are measured in units of the in-plane pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy.spatial import ConvexHull

from deepscope.errors import ConfigError, InputError


@dataclass(frozen=True)
class Rays:
    """Ray step vectors ``(R, ndim)`` in pixel units and, in 3D, the sphere's triangle faces.

    Attributes
    ----------
    vectors : float64 ``(R, ndim)``, pixel-coordinate step of one distance unit per ray.
    faces : int ``(F, 3)`` indices of rays spanning each triangle of the polyhedron (3D).
    anisotropy : per-axis voxel size relative to the in-plane pixel size (3D), e.g.
        ``(2.2, 1, 1)``; physical coordinates are pixel coordinates times this.
    """

    vectors: np.ndarray
    faces: np.ndarray | None
    anisotropy: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.vectors)

    @property
    def ndim(self) -> int:
        return self.vectors.shape[1]


def rays_2d(n_rays: int) -> Rays:
    """``n_rays`` rays at equal angles, counter-clockwise from the +x axis (in image rows,
    y grows downwards, so the polygon winds the same way for every object)."""
    if n_rays < 3:
        raise ConfigError(f"a polygon needs at least 3 rays, got {n_rays}")
    angles = 2 * np.pi * np.arange(n_rays) / n_rays
    return Rays(np.stack([np.sin(angles), np.cos(angles)], axis=1), None, (1.0, 1.0))


def rays_3d(n_rays: int, anisotropy: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Rays:
    """``n_rays`` directions on a Fibonacci (golden spiral) lattice of the unit sphere in
    physical space, divided by ``anisotropy`` into pixel steps; faces from their convex hull."""
    if n_rays < 8:
        raise ConfigError(f"a polyhedron needs at least 8 rays, got {n_rays}")
    aniso = np.asarray(anisotropy, dtype=np.float64)
    if aniso.shape != (3,) or np.any(aniso <= 0):
        raise ConfigError(f"anisotropy must be three positive numbers (z, y, x), got {anisotropy}")
    i = np.arange(n_rays) + 0.5
    z = 1 - 2 * i / n_rays
    r = np.sqrt(1 - z**2)
    phi = np.pi * (3 - np.sqrt(5)) * i
    unit = np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)
    faces = ConvexHull(unit).simplices.astype(np.int64)
    # orient every face counter-clockwise seen from outside, so cone tests are consistent
    a, b, c = unit[faces[:, 0]], unit[faces[:, 1]], unit[faces[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return Rays(unit / aniso, faces, tuple(float(v) for v in aniso))


@numba.njit(cache=True, nogil=True)
def _distances_2d(labels, vectors, grid, offset):
    h, w = labels.shape
    n_rays = vectors.shape[0]
    gh = (h - offset + grid - 1) // grid
    gw = (w - offset + grid - 1) // grid
    out = np.zeros((n_rays, gh, gw), dtype=np.float32)
    for i in range(gh):
        y = i * grid + offset
        for j in range(gw):
            x = j * grid + offset
            lab = labels[y, x]
            if lab == 0:
                continue
            for r in range(n_rays):
                dy = vectors[r, 0]
                dx = vectors[r, 1]
                t = 0
                while True:
                    t += 1
                    yy = int(np.floor(y + t * dy + 0.5))
                    xx = int(np.floor(x + t * dx + 0.5))
                    if yy < 0 or yy >= h or xx < 0 or xx >= w or labels[yy, xx] != lab:
                        break
                out[r, i, j] = t - 0.5
    return out


@numba.njit(cache=True, nogil=True)
def _distances_3d(labels, vectors, grid, offset):
    d, h, w = labels.shape
    n_rays = vectors.shape[0]
    gd = (d - offset + grid - 1) // grid
    gh = (h - offset + grid - 1) // grid
    gw = (w - offset + grid - 1) // grid
    out = np.zeros((n_rays, gd, gh, gw), dtype=np.float32)
    for k in range(gd):
        z = k * grid + offset
        for i in range(gh):
            y = i * grid + offset
            for j in range(gw):
                x = j * grid + offset
                lab = labels[z, y, x]
                if lab == 0:
                    continue
                for r in range(n_rays):
                    t = 0
                    while True:
                        t += 1
                        zz = int(np.floor(z + t * vectors[r, 0] + 0.5))
                        yy = int(np.floor(y + t * vectors[r, 1] + 0.5))
                        xx = int(np.floor(x + t * vectors[r, 2] + 0.5))
                        if (
                            zz < 0
                            or zz >= d
                            or yy < 0
                            or yy >= h
                            or xx < 0
                            or xx >= w
                            or labels[zz, yy, xx] != lab
                        ):
                            break
                    out[r, k, i, j] = t - 0.5
    return out


def grid_offset(grid: int) -> int:
    """Pixel of each ``grid``-sized cell that stands for the cell (its centre, rounded down)."""
    return grid // 2


def ray_distances(labels: np.ndarray, rays: Rays, grid: int = 1) -> np.ndarray:
    """Distances ``(R, *spatial // grid)`` from every ``grid``-th pixel to its object's border.

    The walk along each ray goes in unit steps of the ray vector and stops at the first
    pixel of another label (or the image edge); the distance is half a step short of it,
    i.e. on the border between the last inside and the first outside pixel. Background
    pixels get 0. Sampled pixels are ``index * grid + grid // 2``.
    """
    labels = np.ascontiguousarray(labels)
    if labels.ndim != rays.ndim:
        raise InputError(
            f"labels have {labels.ndim} dimensions but the rays are {rays.ndim}D; "
            "give a label image of the model's dimensionality"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        labels = labels.astype(np.int64)
    kernel = _distances_2d if rays.ndim == 2 else _distances_3d
    return kernel(labels, rays.vectors, grid, grid_offset(grid))


def object_probability(labels: np.ndarray, distances: np.ndarray, grid: int = 1) -> np.ndarray:
    """Per-pixel object probability target: the distance to the border (the shortest ray),
    divided by its largest value inside the same object; 0 on background."""
    sampled = labels[tuple(slice(grid_offset(grid), None, grid) for _ in range(labels.ndim))]
    sampled = sampled[tuple(slice(0, s) for s in distances.shape[1:])]
    nearest = distances.min(axis=0)
    flat = sampled.ravel().astype(np.int64)
    peak = np.zeros(int(flat.max(initial=0)) + 1, dtype=np.float32)
    np.maximum.at(peak, flat, nearest.ravel())
    scale = peak[flat]
    prob = np.divide(nearest.ravel(), scale, out=np.zeros_like(scale), where=scale > 0)
    return prob.reshape(nearest.shape)
