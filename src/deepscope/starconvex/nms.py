"""Non-maximum suppression of star-convex candidates and their rasterisation to labels.

Both are one pass of *greedy painting*, compiled with numba: candidates are visited from
the highest score down; each is rasterised inside its bounding box onto a canvas that holds,
per pixel, the kept object that claimed it first. A candidate is suppressed when its overlap
with a kept object exceeds ``nms_threshold`` times the smaller of the two areas (the overlap
counted on pixels that object claimed); otherwise it is kept and claims its unclaimed
pixels. Relative to the smaller area rather than the union, a small polygon nested in a
large one counts as a duplicate: on DSB2018 fluorescence this gave fewer false positives
than intersection over union at every threshold. The cost
is the summed bounding-box area of the candidates, with no pairwise comparison at all, so it
stays linear with hundreds of thousands of candidates and thousands of objects. Run on a
canvas at the network's output grid it is the suppression; run at full resolution on the kept
candidates with no threshold it draws the label image, where higher scores win overlaps.

Inside test. A pixel at physical offset ``p`` from the centre lies in the cone of one polygon
sector (two neighbouring rays) or polyhedron face (three rays); writing ``p = sum_i a_i u_i``
over that cone's unit ray directions ``u_i``, it is inside when ``sum_i a_i / d_i <= 1``,
``d_i`` being the predicted distances: the star-convex shape is exactly the union of the
triangles (tetrahedra) between its centre and its border.
"""

from __future__ import annotations

import numba
import numpy as np

from deepscope.starconvex.rays import Rays

_MAX_OWNERS = 512
_CUBE_BINS = 32


def _cone_inverses(unit: np.ndarray, cones: np.ndarray) -> np.ndarray:
    """Per cone, the matrix that turns a direction into coefficients over its unit rays."""
    mats = unit[cones].transpose(0, 2, 1)  # columns are the cone's ray directions
    return np.linalg.inv(mats)


def _cube_lookup(unit: np.ndarray, faces: np.ndarray, inverses: np.ndarray) -> np.ndarray:
    """Face containing the centre of each bin of a cube map (6, B, B) of directions."""
    b = _CUBE_BINS
    centres = (np.arange(b) + 0.5) / b * 2 - 1
    table = np.zeros((6, b, b), dtype=np.int64)
    for side in range(6):
        axis, sign = divmod(side, 2)
        others = [a for a in range(3) if a != axis]
        uu, vv = np.meshgrid(centres, centres, indexing="ij")
        dirs = np.zeros((b, b, 3))
        dirs[..., axis] = 1.0 if sign == 0 else -1.0
        dirs[..., others[0]] = uu
        dirs[..., others[1]] = vv
        coef = np.einsum("fij,abj->abfi", inverses, dirs)
        table[side] = np.argmax(coef.min(axis=-1), axis=-1)
    return table


@numba.njit(cache=True, nogil=True, inline="always")
def _cube_bin(p0, p1, p2, bins):
    a0, a1, a2 = abs(p0), abs(p1), abs(p2)
    if a0 >= a1 and a0 >= a2:
        side, m, u, v = 0 if p0 > 0 else 1, a0, p1, p2
    elif a1 >= a2:
        side, m, u, v = 2 if p1 > 0 else 3, a1, p0, p2
    else:
        side, m, u, v = 4 if p2 > 0 else 5, a2, p0, p1
    iu = min(bins - 1, int((u / m + 1) * 0.5 * bins))
    iv = min(bins - 1, int((v / m + 1) * 0.5 * bins))
    return side, iu, iv


@numba.njit(cache=True, nogil=True, inline="always")
def _cone_coefficients(inv, p0, p1, p2):
    a = inv[0, 0] * p0 + inv[0, 1] * p1 + inv[0, 2] * p2
    b = inv[1, 0] * p0 + inv[1, 1] * p1 + inv[1, 2] * p2
    c = inv[2, 0] * p0 + inv[2, 1] * p1 + inv[2, 2] * p2
    return a, b, c


@numba.njit(cache=True, nogil=True)
def _inside_3d(p0, p1, p2, dist, cones, inverses, table):
    if p0 == 0.0 and p1 == 0.0 and p2 == 0.0:
        return True
    side, iu, iv = _cube_bin(p0, p1, p2, table.shape[1])
    f = table[side, iu, iv]
    a, b, c = _cone_coefficients(inverses[f], p0, p1, p2)
    if min(a, min(b, c)) < -1e-9:  # near a cone edge the bin's face can miss: search all
        best = -1e30
        for g in range(cones.shape[0]):
            ga, gb, gc = _cone_coefficients(inverses[g], p0, p1, p2)
            low = min(ga, min(gb, gc))
            if low > best:
                best, f, a, b, c = low, g, ga, gb, gc
    da = max(dist[cones[f, 0]], 1e-6)
    db = max(dist[cones[f, 1]], 1e-6)
    dc = max(dist[cones[f, 2]], 1e-6)
    return a / da + b / db + c / dc <= 1.0


@numba.njit(cache=True, nogil=True, inline="always")
def _add_overlap(owners, inter, n_owners, owner):
    """Count one more pixel shared with kept object ``owner``; returns the owner count."""
    for m in range(n_owners):
        if owners[m] == owner:
            inter[m] += 1
            return n_owners
    if n_owners < owners.shape[0]:
        owners[n_owners] = owner
        inter[n_owners] = 1
        n_owners += 1
    return n_owners


@numba.njit(cache=True, nogil=True, inline="always")
def _suppressed(count, owners, inter, n_owners, areas, thresh):
    if count == 0:
        return True
    for m in range(n_owners):
        if inter[m] > thresh * min(count, areas[owners[m]]):
            return True
    return False


@numba.njit(cache=True, nogil=True, inline="always")
def _row_crossings(vy, vx, row_y, xs):
    """Sorted x positions where the polygon's edges cross the line y = ``row_y``."""
    n_vert = vy.shape[0]
    n = 0
    for r in range(n_vert):
        y0 = vy[r]
        y1 = vy[(r + 1) % n_vert]
        if (y0 <= row_y < y1) or (y1 <= row_y < y0):
            x0 = vx[r]
            xs[n] = x0 + (row_y - y0) * (vx[(r + 1) % n_vert] - x0) / (y1 - y0)
            n += 1
    for i in range(1, n):  # insertion sort: a handful of crossings
        v = xs[i]
        j = i - 1
        while j >= 0 and xs[j] > v:
            xs[j + 1] = xs[j]
            j -= 1
        xs[j + 1] = v
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _run_columns(x_start, x_stop, offset, step, width):
    """Canvas columns ``[lo, hi)`` whose pixel positions lie in ``[x_start, x_stop)``."""
    lo = max(0, int(np.ceil((x_start - offset) / step)))
    hi = min(width, int(np.ceil((x_stop - offset) / step)))
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _paint_polygons(centres, dists, order, vectors, canvas, step, offset, thresh):
    """Greedy painting of polygons on a 2D ``canvas`` by scanlines: per canvas row the
    polygon's edge crossings give the runs of pixels inside (even-odd rule), so the cost per
    pixel is one canvas read. Returns the kept candidate indices in painting order."""
    h, w = canvas.shape
    n_rays = vectors.shape[0]
    kept = np.empty(order.shape[0], dtype=np.int64)
    areas = np.zeros(order.shape[0] + 1, dtype=np.int64)
    owners = np.zeros(_MAX_OWNERS, dtype=np.int64)
    inter = np.zeros(_MAX_OWNERS, dtype=np.int64)
    vy = np.empty(n_rays)
    vx = np.empty(n_rays)
    xs = np.empty(n_rays + 1)
    n_kept = 0
    for idx in range(order.shape[0]):
        c = order[idx]
        low_y = 1e30
        high_y = -1e30
        for r in range(n_rays):
            vy[r] = centres[c, 0] + dists[c, r] * vectors[r, 0]
            vx[r] = centres[c, 1] + dists[c, r] * vectors[r, 1]
            low_y = min(low_y, vy[r])
            high_y = max(high_y, vy[r])
        row_lo = max(0, int(np.ceil((low_y - offset[0]) / step[0])))
        row_hi = min(h - 1, int(np.floor((high_y - offset[0]) / step[0])))
        count = 0
        n_owners = 0
        early = False
        # rows from the centre outwards: a duplicate overlaps a kept object most near its
        # centre, so the early stop below comes after fewer rows (the decision is the same
        # in any order, as the overlaps only grow)
        centre_row = min(max(int(np.rint((centres[c, 0] - offset[0]) / step[0])), row_lo), row_hi)
        span = max(centre_row - row_lo, row_hi - centre_row)
        for t in range(2 * span + 1):
            i = centre_row + ((t + 1) // 2 if t % 2 else -(t // 2))
            if i < row_lo or i > row_hi:
                continue
            n = _row_crossings(vy, vx, i * step[0] + offset[0], xs)
            for k in range(0, n - 1, 2):
                j_lo, j_hi = _run_columns(xs[k], xs[k + 1], offset[1], step[1], w)
                for j in range(j_lo, j_hi):
                    count += 1
                    o = canvas[i, j]
                    if o > 0:
                        n_owners = _add_overlap(owners, inter, n_owners, o)
            for m in range(n_owners):  # surely a duplicate: stop counting
                if inter[m] > thresh * areas[owners[m]]:
                    early = True
            if early:
                break
        if early or _suppressed(count, owners, inter, n_owners, areas, thresh):
            continue
        n_kept += 1
        kept[n_kept - 1] = c
        areas[n_kept] = count
        for i in range(row_lo, row_hi + 1):
            n = _row_crossings(vy, vx, i * step[0] + offset[0], xs)
            for k in range(0, n - 1, 2):
                j_lo, j_hi = _run_columns(xs[k], xs[k + 1], offset[1], step[1], w)
                for j in range(j_lo, j_hi):
                    if canvas[i, j] == 0:
                        canvas[i, j] = n_kept
    return kept[:n_kept]


@numba.njit(cache=True, nogil=True)
def _paint_polyhedra(
    centres, dists, order, vectors, aniso, cones, inverses, table, canvas, step, offset, thresh
):
    """Greedy painting of polyhedra on a 3D ``canvas``, voxel by voxel with the cone test;
    returns the kept candidate indices in painting order."""
    shape = canvas.shape
    n_rays = vectors.shape[0]
    kept = np.empty(order.shape[0], dtype=np.int64)
    areas = np.zeros(order.shape[0] + 1, dtype=np.int64)
    owners = np.zeros(_MAX_OWNERS, dtype=np.int64)
    inter = np.zeros(_MAX_OWNERS, dtype=np.int64)
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    centre = np.zeros(3)
    scale, stp, off = aniso, step, offset
    n_kept = 0
    for idx in range(order.shape[0]):
        c = order[idx]
        dist = dists[c]
        for a in range(3):
            centre[a] = centres[c, a]
            low = 0.0
            high = 0.0
            for r in range(n_rays):
                v = dist[r] * vectors[r, a]
                low = min(low, v)
                high = max(high, v)
            lo[a] = max(0, int(np.ceil((centre[a] + low - off[a]) / stp[a])))
            hi[a] = min(shape[a] - 1, int(np.floor((centre[a] + high - off[a]) / stp[a])))
        count = 0
        n_owners = 0
        for z in range(lo[0], hi[0] + 1):
            pz = (z * stp[0] + off[0] - centre[0]) * scale[0]
            for y in range(lo[1], hi[1] + 1):
                py = (y * stp[1] + off[1] - centre[1]) * scale[1]
                for x in range(lo[2], hi[2] + 1):
                    px = (x * stp[2] + off[2] - centre[2]) * scale[2]
                    if not _inside_3d(pz, py, px, dist, cones, inverses, table):
                        continue
                    count += 1
                    o = canvas[z, y, x]
                    if o > 0:
                        n_owners = _add_overlap(owners, inter, n_owners, o)
        if _suppressed(count, owners, inter, n_owners, areas, thresh):
            continue
        n_kept += 1
        kept[n_kept - 1] = c
        areas[n_kept] = count
        for z in range(lo[0], hi[0] + 1):
            pz = (z * stp[0] + off[0] - centre[0]) * scale[0]
            for y in range(lo[1], hi[1] + 1):
                py = (y * stp[1] + off[1] - centre[1]) * scale[1]
                for x in range(lo[2], hi[2] + 1):
                    if canvas[z, y, x] != 0:
                        continue
                    px = (x * stp[2] + off[2] - centre[2]) * scale[2]
                    if _inside_3d(pz, py, px, dist, cones, inverses, table):
                        canvas[z, y, x] = n_kept
    return kept[:n_kept]


class Painter:
    """Greedy-painting NMS and rasterisation for one set of rays (precomputed cone tables)."""

    def __init__(self, rays: Rays) -> None:
        self.rays = rays
        self.aniso = np.asarray(rays.anisotropy, dtype=np.float64)
        if rays.ndim == 3:  # polygons need no tables: they are filled by scanlines
            unit = rays.vectors * self.aniso
            self.inverses = _cone_inverses(unit, rays.faces)
            self.table = _cube_lookup(unit, rays.faces, self.inverses)

    def paint(
        self,
        centres: np.ndarray,
        dists: np.ndarray,
        shape: tuple[int, ...],
        threshold: float = np.inf,
        step: tuple[int, ...] | int = 1,
        offset: tuple[int, ...] | int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Paint candidates in the given order onto a canvas of ``shape``.

        Parameters
        ----------
        centres : ``(N, ndim)`` candidate centres in full-resolution pixel coordinates.
        dists : ``(N, R)`` ray distances.
        shape : canvas shape; canvas index ``i`` stands for pixel ``i * step + offset``.
        threshold : overlap (relative to the smaller area) above which a candidate is
            suppressed; ``inf`` keeps all (drawing).

        Returns
        -------
        kept : indices into the candidates, in painting order (object ``k + 1`` is
            ``kept[k]``), and the int32 canvas of object ids.
        """
        nd = self.rays.ndim
        step = np.broadcast_to(np.asarray(step, dtype=np.float64), (nd,)).copy()
        offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (nd,)).copy()
        canvas = np.zeros(shape, dtype=np.int32)
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        dists = np.ascontiguousarray(dists, dtype=np.float32)
        order = np.arange(len(centres), dtype=np.int64)
        threshold = float(min(threshold, 1e30))
        if nd == 2:
            kept = _paint_polygons(
                centres, dists, order, self.rays.vectors, canvas, step, offset, threshold
            )
        else:
            kept = _paint_polyhedra(
                centres,
                dists,
                order,
                self.rays.vectors,
                self.aniso,
                self.rays.faces,
                self.inverses,
                self.table,
                canvas,
                step,
                offset,
                threshold,
            )
        return kept, canvas


def non_maximum_suppression(
    painter: Painter,
    centres: np.ndarray,
    dists: np.ndarray,
    scores: np.ndarray,
    shape: tuple[int, ...],
    threshold: float,
    grid: int = 1,
) -> np.ndarray:
    """Indices of the candidates that survive, best score first.

    Candidates sit on the network's output grid (full-resolution pixel ``i * grid +
    grid // 2``), so overlaps are counted on that grid: ``grid**ndim`` times fewer pixels.
    """
    order = np.argsort(-scores, kind="stable")
    kept, _ = painter.paint(
        centres[order],
        dists[order],
        tuple(-(-s // grid) for s in shape),
        threshold,
        step=grid,
        offset=grid // 2,
    )
    return order[kept]


def draw_labels(
    painter: Painter, centres: np.ndarray, dists: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """Label image of star-convex objects; earlier objects win where they overlap, objects
    left with no pixel are dropped, labels are 1..N in the given order."""
    _, canvas = painter.paint(centres, dists, shape)
    present = np.bincount(canvas.ravel(), minlength=len(centres) + 1) > 0
    present[0] = False
    if present[1:].all():  # the usual case: the canvas already holds labels 1..N
        return canvas
    ids = np.zeros(len(centres) + 1, dtype=np.int32)
    ids[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return ids[canvas]
