"""Flow-field targets of instance label images (Cellpose and Omnipose style), 2D and 3D.

A flow field gives every object pixel a unit vector that points, through the object, towards
the place where all pixels of that object gather when they follow the field. A network trained
to predict it (together with a foreground probability) lets objects of any shape be recovered
by following the flows and grouping the pixels that meet (:mod:`deepscope.flows.dynamics`).

Two targets are offered by :func:`flow_targets`:

``"heat"`` (Stringer et al. 2021, Cellpose)
    Heat diffuses from a source pixel at the object's centre, with the object's outside held
    at zero, and the flow is the normalised gradient of the logarithm of the heat. Heat moves
    only through the object, so even in a bent or C-shaped object the flows run along the
    object's body to the source instead of cutting across the background.

``"distance"`` (Cutler et al. 2022, Omnipose)
    The normalised gradient of the smoothed Euclidean distance to the object's boundary.
    Pixels flow to the object's medial axis (its skeleton) instead of to one point, which suits
    long thin cells whose centre is poorly defined.

Conventions: flows are ``float32`` arrays ``(ndim, *shape)``; channel ``a`` is the component
along image axis ``a`` (``(dy, dx)`` in 2D, ``(dz, dy, dx)`` in 3D), in pixel units. Inside
an object each vector has unit length, except where the gradient vanishes (the source pixel of
a symmetric object, a one-pixel object, a ridge pixel of the distance field), where it is
zero. Background is zero. Two objects that touch are treated as separate: neither heat nor
distance crosses from one label to another.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
from scipy import ndimage

from deepscope.errors import ConfigError, InputError

__all__ = ["FLOW_METHODS", "flow_targets", "object_centres"]

FLOW_METHODS: tuple[str, ...] = ("heat", "distance")
"""Names accepted by the ``method`` argument of :func:`flow_targets`."""

# Number of diffusion iterations per object: this many times the sum of the object's
# bounding-box side lengths (2 * (height + width) in 2D, as in Cellpose).
HEAT_ITERATIONS_PER_EXTENT = 2

# A gradient shorter than this (in log-heat or distance units per pixel) counts as zero:
# it is rounding noise, e.g. at the source pixel of a symmetric object.
_MIN_GRADIENT = 1e-6

# Standard deviation (pixels) of the Gaussian smoothing of the distance field.
_DISTANCE_SMOOTHING = 1.0


# --------------------------------------------------------------------------- input checks


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(
            f"flow targets need a 2D (Y, X) or 3D (Z, Y, X) label image, got shape "
            f"{labels.shape}; squeeze or split the other axes first"
        )
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"labels must be an integer image (0 = background), got dtype {labels.dtype}; "
            "label connected components first (e.g. skimage.measure.label)"
        )
    if labels.size and labels.min() < 0:
        raise InputError("labels must not be negative (0 = background, 1, 2, ... objects)")
    return labels


def _sequential(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered ``1..n`` in the order of their values (``int32``), and ``n``."""
    if labels.size == 0:
        return labels.astype(np.int32), 0
    top = int(labels.max())
    if top == 0:
        return np.zeros(labels.shape, np.int32), 0
    if top <= 4 * labels.size + 65536:
        present = np.zeros(top + 1, dtype=bool)
        present[labels.ravel()] = True
        present[0] = False
        lut = np.zeros(top + 1, dtype=np.int32)
        n = int(present.sum())
        lut[present] = np.arange(1, n + 1, dtype=np.int32)
        return lut[labels], n
    uniq, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape).astype(np.int32)
    if uniq[0] != 0:
        inverse += 1
    return inverse, int(np.count_nonzero(uniq))


# --------------------------------------------------------------------------- pixel tables


class _Pixels:
    """Object pixels of a label image, grouped by object, with their in-object neighbours.

    ``order[starts[k]:starts[k + 1]]`` are the flat indices (into the unpadded image) of the
    pixels of object ``k + 1``, in raster order. ``neighbours[i, j]`` is the row of the pixel at
    offset ``j`` (of the ``3**ndim`` offsets of the full neighbourhood, itself included) from
    pixel ``i`` when it belongs to the same object, else ``n_pixels`` (a sentinel row).
    ``face_plus[a]`` / ``face_minus[a]`` are the offsets one step up / down axis ``a``.
    """

    def __init__(self, seq: np.ndarray, n_objects: int):
        ndim = seq.ndim
        padded = np.pad(seq, 1)
        strides = np.array(
            [int(np.prod(padded.shape[a + 1 :])) for a in range(ndim)], dtype=np.int64
        )
        steps = list(itertools.product((-1, 0, 1), repeat=ndim))
        offsets = np.array([int(np.dot(s, strides)) for s in steps], dtype=np.int64)
        self.face_plus = np.array(
            [steps.index(tuple(int(b == a) for b in range(ndim))) for a in range(ndim)],
            dtype=np.int64,
        )
        self.face_minus = np.array(
            [steps.index(tuple(-int(b == a) for b in range(ndim))) for a in range(ndim)],
            dtype=np.int64,
        )
        flat_padded = padded.ravel()
        fg = np.flatnonzero(flat_padded)
        self.starts, sorted_fg = _group_by_label(flat_padded, fg, n_objects)
        self.neighbours = _neighbour_table(flat_padded, sorted_fg, offsets)
        coords = np.unravel_index(sorted_fg, padded.shape)
        self.coords = np.stack([c - 1 for c in coords], axis=1).astype(np.int64)
        self.order = np.ravel_multi_index(tuple(self.coords.T), seq.shape)
        self.shape = seq.shape
        self.n_objects = n_objects

    @property
    def n_pixels(self) -> int:
        return len(self.order)


@numba.njit(cache=True, nogil=True)
def _group_by_label(flat, fg, n_objects):
    """Counting sort of the foreground indices ``fg`` by label (stable: raster order kept)."""
    starts = np.zeros(n_objects + 1, dtype=np.int64)
    for i in range(fg.size):
        starts[flat[fg[i]]] += 1
    # starts[k] now counts label k (k >= 1); turn counts into start offsets of label k + 1
    total = 0
    for k in range(1, n_objects + 1):
        c = starts[k]
        starts[k - 1] = total
        total += c
    starts[n_objects] = total
    fill = starts[:-1].copy()
    out = np.empty(fg.size, dtype=np.int64)
    for i in range(fg.size):
        k = flat[fg[i]] - 1
        out[fill[k]] = fg[i]
        fill[k] += 1
    return starts, out


@numba.njit(cache=True, nogil=True)
def _neighbour_table(flat, pixels, offsets):
    n = pixels.size
    row = np.full(flat.size, -1, dtype=np.int64)
    for i in range(n):
        row[pixels[i]] = i
    table = np.empty((n, offsets.size), dtype=np.int32)
    for i in range(n):
        p = pixels[i]
        label = flat[p]
        for j in range(offsets.size):
            q = p + offsets[j]
            table[i, j] = row[q] if flat[q] == label else n
    return table


# --------------------------------------------------------------------------- centres


@numba.njit(cache=True, nogil=True)
def _depth(neighbours):
    """Chessboard distance of each pixel to the outside of its object (1 on the border)."""
    n, k = neighbours.shape
    depth = np.zeros(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for i in range(n):
        for j in range(k):
            if neighbours[i, j] == n:
                depth[i] = 1
                queue[tail] = i
                tail += 1
                break
    head = 0
    while head < tail:
        i = queue[head]
        head += 1
        for j in range(k):
            q = neighbours[i, j]
            if q < n and depth[q] == 0:
                depth[q] = depth[i] + 1
                queue[tail] = q
                tail += 1
    return depth


@numba.njit(cache=True, nogil=True)
def _sources(coords, starts, depth):
    """Per object, the row of its source pixel and the sum of its bounding-box sides.

    The source is, among the object's "deep" pixels (depth at least ``dmax // 2 + 1``), the
    one nearest to the per-axis median of all the object's pixels; ties go to the first in
    raster order. Restricting to deep pixels keeps the source on the object's spine when the
    median falls near an edge or outside (a C-shaped or bent object).
    """
    n_obj = starts.size - 1
    ndim = coords.shape[1]
    src = np.empty(n_obj, dtype=np.int64)
    extent = np.empty(n_obj, dtype=np.int64)
    med = np.empty(ndim, dtype=np.float64)
    for k in range(n_obj):
        a = starts[k]
        b = starts[k + 1]
        total = 0
        for d in range(ndim):
            col = coords[a:b, d].astype(np.float64)
            med[d] = np.median(col)
            total += int(col.max() - col.min()) + 1
        extent[k] = total
        dmax = depth[a:b].max()
        need = dmax // 2 + 1
        best = -1
        best_d2 = np.inf
        for i in range(a, b):
            if depth[i] < need:
                continue
            d2 = 0.0
            for d in range(ndim):
                t = coords[i, d] - med[d]
                d2 += t * t
            if d2 < best_d2:
                best_d2 = d2
                best = i
        src[k] = best
    return src, extent


def _centres(pix: _Pixels) -> tuple[np.ndarray, np.ndarray]:
    depth = _depth(pix.neighbours)
    return _sources(pix.coords, pix.starts, depth)


def object_centres(labels: np.ndarray) -> np.ndarray:
    """Source pixel of the heat flows of every object: a pixel inside, near its centre.

    Parameters
    ----------
    labels : np.ndarray
        Integer label image, 2D ``(Y, X)`` or 3D ``(Z, Y, X)``; 0 is background. Labels need
        not be consecutive.

    Returns
    -------
    np.ndarray
        ``int64`` array ``(n_objects, ndim)`` of pixel coordinates; row ``i`` belongs to the
        ``i``-th smallest label present. The pixel is the one nearest to the per-axis median of
        the object's coordinates among the object's deep pixels: those whose chessboard
        distance to the outside is at least half the object's largest (``dmax // 2 + 1``).
        So it lies inside the object, on its thick part, even for bent or C-shaped objects.

    Examples
    --------
    >>> labels = np.zeros((5, 7), int)
    >>> labels[1:4, 1:6] = 3
    >>> object_centres(labels)
    array([[2, 3]])
    """
    labels = _check_labels(labels)
    seq, n = _sequential(labels)
    if n == 0:
        return np.zeros((0, labels.ndim), dtype=np.int64)
    pix = _Pixels(seq, n)
    src, _ = _centres(pix)
    return pix.coords[src].copy()


# --------------------------------------------------------------------------- heat


@numba.njit(cache=True, nogil=True)
def _reachable(neighbours, sources):
    """Pixels connected to their object's source (an object given as several pieces is only
    diffused through the piece holding its source; the other pieces get zero flows)."""
    n, k = neighbours.shape
    seen = np.zeros(n, dtype=np.bool_)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for s in sources:
        seen[s] = True
        queue[tail] = s
        tail += 1
    head = 0
    while head < tail:
        i = queue[head]
        head += 1
        for j in range(k):
            q = neighbours[i, j]
            if q < n and not seen[q]:
                seen[q] = True
                queue[tail] = q
                tail += 1
    return seen


@numba.njit(cache=True, nogil=True, parallel=True)
def _diffuse(neighbours, starts, sources, n_iter, reachable):
    """Heat per pixel after diffusion inside each object from its source.

    Each iteration adds one unit of heat at the source, then replaces every pixel's heat by
    the mean over its full ``3**ndim`` neighbourhood, where pixels outside the object count as
    zero (a cold, absorbing outside). Heat advances one pixel per iteration; if a pixel
    connected to the source is still cold after ``n_iter[k]`` iterations (a very long winding
    object), iterations go on until every such pixel is warm, up to ``4 * (n_pixels +
    n_iter[k])`` in total. Objects are independent and diffuse in parallel.
    """
    n, k = neighbours.shape
    heat = np.zeros(n + 1, dtype=np.float64)  # heat[n] is the cold outside
    new = np.zeros(n, dtype=np.float64)
    inv = 1.0 / k
    for obj in numba.prange(starts.size - 1):
        a = starts[obj]
        b = starts[obj + 1]
        s = sources[obj]
        todo = n_iter[obj]
        done = 0
        cap = 4 * (b - a + n_iter[obj])
        while True:
            for _ in range(todo):
                heat[s] += 1.0
                for i in range(a, b):
                    acc = 0.0
                    for j in range(k):
                        acc += heat[neighbours[i, j]]
                    new[i] = acc * inv
                for i in range(a, b):
                    heat[i] = new[i]
            done += todo
            cold = False
            for i in range(a, b):
                if reachable[i] and heat[i] <= 0.0:
                    cold = True
                    break
            if not cold or done >= cap:
                break
            todo = max(8, n_iter[obj] // 2)
    return heat[:n]


@numba.njit(cache=True, nogil=True)
def _unit_gradient(field, valid, neighbours, face_plus, face_minus):
    """Normalised gradient of ``field`` over the object pixels.

    Central differences between the two face neighbours along each axis; one-sided where only
    one of them is in the object (and valid); zero along an axis where neither is. Vectors
    shorter than ``_MIN_GRADIENT`` are set to zero.
    """
    n = neighbours.shape[0]
    ndim = face_plus.size
    out = np.zeros((n, ndim), dtype=np.float32)
    g = np.zeros(ndim, dtype=np.float64)
    for i in range(n):
        if not valid[i]:
            continue
        norm2 = 0.0
        for d in range(ndim):
            p = neighbours[i, face_plus[d]]
            m = neighbours[i, face_minus[d]]
            has_p = p < n and valid[p]
            has_m = m < n and valid[m]
            if has_p and has_m:
                g[d] = 0.5 * (field[p] - field[m])
            elif has_p:
                g[d] = field[p] - field[i]
            elif has_m:
                g[d] = field[i] - field[m]
            else:
                g[d] = 0.0
            norm2 += g[d] * g[d]
        norm = np.sqrt(norm2)
        if norm > _MIN_GRADIENT:
            for d in range(ndim):
                out[i, d] = g[d] / norm
    return out


def _heat_vectors(pix: _Pixels) -> np.ndarray:
    src, extent = _centres(pix)
    n_iter = HEAT_ITERATIONS_PER_EXTENT * extent
    reachable = _reachable(pix.neighbours, src)
    heat = _diffuse(pix.neighbours, pix.starts, src, n_iter, reachable)
    valid = heat > 0
    log_heat = np.log(np.where(valid, heat, 1.0))
    return _unit_gradient(log_heat, valid, pix.neighbours, pix.face_plus, pix.face_minus)


# --------------------------------------------------------------------------- distance


def _distance_field(seq: np.ndarray, n: int) -> np.ndarray:
    """Per object, the smoothed Euclidean distance to the nearest pixel outside the object."""
    field = np.zeros(seq.shape, dtype=np.float64)
    for k, sl in enumerate(ndimage.find_objects(seq, max_label=n), start=1):
        if sl is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        inside = np.pad(seq[box] == k, 1)
        dist = ndimage.distance_transform_edt(inside)
        # normalised convolution: smooth inside the object without mixing in the outside
        weight = ndimage.gaussian_filter(inside.astype(np.float64), _DISTANCE_SMOOTHING)
        smooth = ndimage.gaussian_filter(dist, _DISTANCE_SMOOTHING)
        inner = tuple(slice(1, -1) for _ in range(seq.ndim))
        inside = inside[inner]
        values = smooth[inner][inside] / np.maximum(weight[inner][inside], 1e-12)
        field[box][inside] = values
    return field


def _distance_vectors(pix: _Pixels, seq: np.ndarray) -> np.ndarray:
    field = _distance_field(seq, pix.n_objects).ravel()[pix.order]
    valid = np.ones(pix.n_pixels, dtype=bool)
    return _unit_gradient(field, valid, pix.neighbours, pix.face_plus, pix.face_minus)


# --------------------------------------------------------------------------- public


def flow_targets(labels: np.ndarray, method: str = "heat") -> np.ndarray:
    """Unit flow vectors of every object pixel of a label image.

    Parameters
    ----------
    labels : np.ndarray
        Integer label image, 2D ``(Y, X)`` or 3D ``(Z, Y, X)``; 0 is background, each positive
        value one object (labels need not be consecutive). Objects are the sets of pixels
        sharing a label; touching objects stay separate.
    method : {"heat", "distance"}
        ``"heat"`` (Cellpose): diffusion from the source pixel of :func:`object_centres`, for
        ``2 * (sum of the bounding-box side lengths)`` iterations (``2 * (height + width)`` in
        2D; longer if some pixel is still cold), averaging over the full 3x3 (3x3x3)
        neighbourhood inside the object each time; the flow is the gradient of the logarithm of
        the heat, by central differences (one-sided on the object's border). ``"distance"``
        (Omnipose): gradient of the Euclidean distance to the object's outside, smoothed by a
        Gaussian of sigma 1 pixel within the object; flows point to the medial axis.

    Returns
    -------
    np.ndarray
        ``float32`` array ``(ndim, *labels.shape)``: channel ``a`` is the component along axis
        ``a``. Unit vectors inside objects (zero where the gradient vanishes, e.g. at the source
        of a symmetric object), zero in the background.

    Raises
    ------
    InputError
        If the image is not 2D or 3D, or not a non-negative integer image.
    ConfigError
        If ``method`` is unknown.

    Notes
    -----
    All objects are processed in one compiled pass over a table of in-object neighbours, so
    the cost grows with the summed ``n_pixels * n_iterations`` of the objects, with no
    per-object Python loop for ``"heat"``. The neighbour table takes ``4 * 3**ndim`` bytes
    per object pixel (36 in 2D, 108 in 3D): about 1 GB for 10 million object voxels.

    Examples
    --------
    >>> labels = np.zeros((9, 9), int)
    >>> labels[2:7, 2:7] = 1
    >>> flows = flow_targets(labels)
    >>> flows[:, 2, 4]  # top edge, middle: points down (+y) towards the centre
    array([1., 0.], dtype=float32)
    """

    if method not in FLOW_METHODS:
        raise ConfigError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
    labels = _check_labels(labels)
    out = np.zeros((labels.ndim, *labels.shape), dtype=np.float32)
    seq, n = _sequential(labels)
    if n == 0:
        return out
    pix = _Pixels(seq, n)
    vectors = _heat_vectors(pix) if method == "heat" else _distance_vectors(pix, seq)
    out.reshape(labels.ndim, -1)[:, pix.order] = vectors.T
    return out
