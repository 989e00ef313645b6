"""From predicted flows and foreground probability back to instance labels (Cellpose style).

The reconstruction of :func:`flows_to_labels` runs in four steps:

1. **Follow the flows** (:func:`follow_flows`). Every foreground pixel starts at its own
   position and moves ``n_steps`` Euler steps along the flow field, read at non-integer
   positions by bilinear (trilinear) interpolation and clamped to the image. Pixels of one
   object gather at that object's sink (heat flows) or, stopped where they first cross a
   ridge of the field, on its skeleton (distance flows).
2. **Group the end points** (:func:`cluster_endpoints`). A histogram of the rounded end points
   has one sharp peak per object; peaks seed objects, which grow over neighbouring occupied
   bins (a few steps for heat flows, along the whole skeleton for distance flows); each pixel
   takes the label of the bin its end point lands in.
3. **Check the flows** (:func:`flow_error`). The flows of each reconstructed object are
   recomputed from its mask with :func:`~deepscope.flows.targets.flow_targets`; touching
   objects that fail the check alone but pass it together are joined
   (:func:`merge_fragments`: a cell cut in two at a constriction); an object whose predicted
   flows still disagree (mean squared difference above ``flow_threshold``) is dropped: its
   pixels did not move like the pixels of a real object.
4. **Clean up**: holes inside each object are filled, objects smaller than ``min_size`` pixels
   removed, and labels renumbered ``1..n``.

Everything works for 2D ``(Y, X)`` and 3D ``(Z, Y, X)`` images alike.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from deepscope.errors import ConfigError, InputError
from deepscope.flows.targets import FLOW_METHODS, _check_labels, _sequential, flow_targets
from deepscope.measure.regions import keep_largest_pieces

__all__ = ["cluster_endpoints", "flow_error", "flows_to_labels", "follow_flows", "merge_fragments"]

# Early stop of follow_flows: every _SETTLE_STEPS steps, pixels that moved less than
# _SETTLE_DISTANCE (along every axis) since the last check are left where they are.
_SETTLE_STEPS = 10
_SETTLE_DISTANCE = 0.05

# Width of the window in which a seed must be the largest smoothed histogram value.
_PEAK_WINDOW = 5


# --------------------------------------------------------------------------- checks


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise InputError(
            f"the mask must be a 2D (Y, X) or 3D (Z, Y, X) image, got shape {mask.shape}"
        )
    return mask.astype(bool, copy=False)


def _check_flows_shape(flows_shape: tuple[int, ...], shape: tuple[int, ...]) -> None:
    if tuple(flows_shape) != (len(shape), *shape):
        raise InputError(
            f"flows must have shape (ndim, *image_shape) = {(len(shape), *shape)}, got "
            f"{tuple(flows_shape)}; channel a is the flow component along image axis a"
        )


# --------------------------------------------------------------------------- following


def follow_flows(
    flows: np.ndarray | torch.Tensor,
    mask: np.ndarray,
    n_steps: int = 200,
    step: float = 1.0,
    device: str | torch.device = "cpu",
    stop_at_reversal: bool = False,
    early_stop: bool = True,
) -> np.ndarray:
    """End positions of the pixels in ``mask`` after following the flow field.

    Parameters
    ----------
    flows : np.ndarray or torch.Tensor
        Flow field ``(ndim, *shape)``; channel ``a`` is the displacement along image axis ``a``
        in pixels per unit step (unit vectors for :func:`~deepscope.flows.flow_targets`).
    mask : np.ndarray
        Boolean image ``shape`` of the pixels to move (2D or 3D).
    n_steps : int
        Number of Euler steps.
    step : float
        Step size: each step moves a pixel by ``step`` times the flow at its position.
    device : str or torch.device
        Where to compute (``"cpu"``, ``"cuda"``...).
    stop_at_reversal : bool
        Freeze a pixel for good once the flow at its position points against the flow of its
        previous step (it has just crossed a ridge of the field). Meant for ``"distance"``
        flows: pixels stop where they first reach the object's medial axis instead of sliding
        along it to scattered points, so each object's end points form one connected
        skeleton. Heat flows do not need it (their pixels gather at one point anyway).
    early_stop : bool
        Every 10 steps, stop moving the pixels whose position changed by less than 0.05 pixel
        (along every axis) over those 10 steps: they sit at a fixed point of the field or
        bounce between two positions around a sink, and would end within a pixel of where
        they are. Most pixels reach their sink long before ``n_steps``, so this saves most of
        the work; ``False`` moves every pixel for all ``n_steps``.

    Returns
    -------
    np.ndarray
        ``float32`` array ``(n_pixels, ndim)`` of final positions in pixel coordinates, row
        ``i`` for the ``i``-th pixel of ``np.nonzero(mask)``.

    Notes
    -----
    The flow at a non-integer position is the bilinear (2D) or trilinear (3D) interpolation of
    the four (eight) surrounding pixels (as :func:`torch.nn.functional.grid_sample` with
    ``align_corners=True``); after each step positions are clamped to ``[0, size - 1]`` along
    every axis. On the CPU a compiled loop moves one pixel at a time on all cores (20 times
    faster than tensor steps there: 0.38 s against 7.4 s for the 336,000 pixels of a
    bacteria frame); on an accelerator all pixels move together as
    one tensor. Both take the same steps (equal to float rounding, tested); the result is
    deterministic.
    """
    mask = _check_mask(mask)
    shape = mask.shape
    ndim = mask.ndim
    _check_flows_shape(tuple(flows.shape), shape)
    if n_steps < 0:
        raise InputError(f"n_steps must be >= 0, got {n_steps}")
    device = torch.device(device)
    coords = np.stack(np.nonzero(mask), axis=1).astype(np.float32)
    if coords.shape[0] == 0 or n_steps == 0:
        return coords
    settle = _SETTLE_STEPS if early_stop else 0
    if device.type == "cpu":
        field = flows.detach().cpu().numpy() if isinstance(flows, torch.Tensor) else flows
        field = np.ascontiguousarray(field, dtype=np.float32)
        kernel = _follow_2d if ndim == 2 else _follow_3d
        return kernel(field, coords, n_steps, step, stop_at_reversal, settle, _SETTLE_DISTANCE)
    return _follow_torch(flows, coords, shape, n_steps, step, device, stop_at_reversal, settle)


def _follow_torch(flows, coords, shape, n_steps, step, device, stop_at_reversal, settle):
    """:func:`follow_flows` on an accelerator: all pixels move together as one tensor."""
    ndim = len(shape)
    if isinstance(flows, torch.Tensor):
        field = flows.detach().to(device=device, dtype=torch.float32)
    else:
        field = torch.from_numpy(np.ascontiguousarray(flows, dtype=np.float32)).to(device)
    field = field.unsqueeze(0)  # (1, ndim, *shape)
    sizes = torch.tensor(shape, dtype=torch.float32, device=device)
    upper = sizes - 1
    # grid_sample's normalised coordinate of pixel position p along an axis of size s is
    # 2 p / (s - 1) - 1 (align_corners=True); an axis of size 1 maps to -1 (its only pixel).
    scale = torch.where(upper > 0, 2.0 / upper.clamp(min=1), torch.zeros_like(upper))
    scale = scale.flip(0)  # grid_sample wants (x, y[, z]): last image axis first
    final = torch.from_numpy(coords).to(device)
    rows = torch.arange(final.shape[0], device=device)  # the pixels still being moved
    pos = final.clone()
    checkpoint = pos.clone()
    previous = torch.zeros_like(pos)
    moving = torch.ones((pos.shape[0], 1), dtype=torch.bool, device=device)
    zero = torch.zeros(ndim, device=device)
    lead = (1,) * (ndim - 1)
    with torch.no_grad():
        for t in range(1, n_steps + 1):
            n = pos.shape[0]
            grid = (pos.flip(1) * scale - 1.0).reshape(1, *lead, n, ndim)
            sampled = F.grid_sample(
                field, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            velocity = sampled.reshape(ndim, n).T
            if stop_at_reversal:
                moving &= (velocity * previous).sum(dim=1, keepdim=True) >= 0
                previous = velocity
                velocity = velocity * moving
            pos = pos + step * velocity
            pos = torch.maximum(torch.minimum(pos, upper), zero)
            if settle and t % settle == 0 and t < n_steps:
                final[rows] = pos
                active = (pos - checkpoint).abs().amax(dim=1) >= _SETTLE_DISTANCE
                if not bool(active.all()):
                    rows, pos = rows[active], pos[active]
                    previous, moving = previous[active], moving[active]
                    if rows.numel() == 0:
                        break
                checkpoint = pos.clone()
        final[rows] = pos
    return final.cpu().numpy().astype(np.float32, copy=False)


@numba.njit(cache=True, nogil=True, parallel=True)
def _follow_2d(field, coords, n_steps, step, stop_at_reversal, settle, settle_distance):
    """:func:`follow_flows` on the CPU for 2D fields: one pixel at a time, in parallel;
    the same steps as :func:`_follow_torch` (bilinear flow, clamp, reversal, settling)."""
    ny, nx = field.shape[1], field.shape[2]
    out = np.empty_like(coords)
    for i in numba.prange(coords.shape[0]):
        y, x = float(coords[i, 0]), float(coords[i, 1])
        cy, cx = y, x
        py, px = 0.0, 0.0
        for t in range(1, n_steps + 1):
            y0, x0 = min(int(y), ny - 2), min(int(x), nx - 2)
            y0, x0 = max(y0, 0), max(x0, 0)
            y1, x1 = min(y0 + 1, ny - 1), min(x0 + 1, nx - 1)
            wy, wx = y - y0, x - x0
            vy = (1 - wy) * ((1 - wx) * field[0, y0, x0] + wx * field[0, y0, x1]) + wy * (
                (1 - wx) * field[0, y1, x0] + wx * field[0, y1, x1]
            )
            vx = (1 - wy) * ((1 - wx) * field[1, y0, x0] + wx * field[1, y0, x1]) + wy * (
                (1 - wx) * field[1, y1, x0] + wx * field[1, y1, x1]
            )
            if stop_at_reversal:
                if vy * py + vx * px < 0:
                    break
                py, px = vy, vx
            y = min(max(y + step * vy, 0.0), ny - 1.0)
            x = min(max(x + step * vx, 0.0), nx - 1.0)
            if settle > 0 and t % settle == 0 and t < n_steps:
                if max(abs(y - cy), abs(x - cx)) < settle_distance:
                    break
                cy, cx = y, x
        out[i, 0], out[i, 1] = y, x
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _corner_lerp(field, c, z0, z1, y0, y1, x0, x1, wz, wy, wx):
    """Trilinear interpolation of channel ``c`` of ``field`` between two planes."""
    low = (1 - wy) * ((1 - wx) * field[c, z0, y0, x0] + wx * field[c, z0, y0, x1]) + wy * (
        (1 - wx) * field[c, z0, y1, x0] + wx * field[c, z0, y1, x1]
    )
    high = (1 - wy) * ((1 - wx) * field[c, z1, y0, x0] + wx * field[c, z1, y0, x1]) + wy * (
        (1 - wx) * field[c, z1, y1, x0] + wx * field[c, z1, y1, x1]
    )
    return (1 - wz) * low + wz * high


@numba.njit(cache=True, nogil=True, parallel=True)
def _follow_3d(field, coords, n_steps, step, stop_at_reversal, settle, settle_distance):
    """:func:`_follow_2d` for 3D fields (trilinear flow)."""
    nz, ny, nx = field.shape[1], field.shape[2], field.shape[3]
    out = np.empty_like(coords)
    for i in numba.prange(coords.shape[0]):
        z, y, x = float(coords[i, 0]), float(coords[i, 1]), float(coords[i, 2])
        cz, cy, cx = z, y, x
        pz, py, px = 0.0, 0.0, 0.0
        for t in range(1, n_steps + 1):
            z0, y0, x0 = (
                max(min(int(z), nz - 2), 0),
                max(min(int(y), ny - 2), 0),
                max(min(int(x), nx - 2), 0),
            )
            z1, y1, x1 = min(z0 + 1, nz - 1), min(y0 + 1, ny - 1), min(x0 + 1, nx - 1)
            wz, wy, wx = z - z0, y - y0, x - x0
            vz = _corner_lerp(field, 0, z0, z1, y0, y1, x0, x1, wz, wy, wx)
            vy = _corner_lerp(field, 1, z0, z1, y0, y1, x0, x1, wz, wy, wx)
            vx = _corner_lerp(field, 2, z0, z1, y0, y1, x0, x1, wz, wy, wx)
            if stop_at_reversal:
                if vz * pz + vy * py + vx * px < 0:
                    break
                pz, py, px = vz, vy, vx
            z = min(max(z + step * vz, 0.0), nz - 1.0)
            y = min(max(y + step * vy, 0.0), ny - 1.0)
            x = min(max(x + step * vx, 0.0), nx - 1.0)
            if settle > 0 and t % settle == 0 and t < n_steps:
                if max(abs(z - cz), abs(y - cy), abs(x - cx)) < settle_distance:
                    break
                cz, cy, cx = z, y, x
        out[i, 0], out[i, 1], out[i, 2] = z, y, x
    return out


# --------------------------------------------------------------------------- clustering


@numba.njit(cache=True, nogil=True)
def _grow_seeds(occupied, seeds, offsets, n_grow):
    """Label bins from the seeds, strongest first, by ``n_grow`` dilation steps each.

    ``occupied`` is the flattened histogram padded by ``link`` empty bins on every side (so
    no bounds checks are needed); a seed already claimed by a stronger seed is skipped. Growth
    only enters unclaimed occupied bins, through the full ``3**ndim`` neighbourhood.
    """
    out = np.zeros(occupied.size, dtype=np.int32)
    frontier = np.empty(occupied.size, dtype=np.int64)
    following = np.empty(occupied.size, dtype=np.int64)
    label = 0
    for s in seeds:
        if out[s] != 0:
            continue
        label += 1
        out[s] = label
        frontier[0] = s
        n_front = 1
        for _ in range(n_grow):
            n_next = 0
            for f in range(n_front):
                b = frontier[f]
                for o in offsets:
                    q = b + o
                    if occupied[q] and out[q] == 0:
                        out[q] = label
                        following[n_next] = q
                        n_next += 1
            if n_next == 0:
                break
            frontier, following = following, frontier
            n_front = n_next
    return out


def cluster_endpoints(
    final: np.ndarray,
    mask: np.ndarray,
    shape: tuple[int, ...],
    min_seed_count: int = 10,
    n_grow: int | None = 5,
    link: int = 1,
) -> np.ndarray:
    """Labels from the end points of :func:`follow_flows`: pixels that meet form one object.

    Parameters
    ----------
    final : np.ndarray
        End positions ``(n_pixels, ndim)`` of the pixels of ``mask``, in the order of
        ``np.nonzero(mask)``.
    mask : np.ndarray
        Boolean image of the pixels that were moved.
    shape : tuple of int
        Shape of the label image to return (that of ``mask``).
    min_seed_count : int
        Least number of end points in the ``3**ndim`` bins around a histogram peak for it to
        seed an object.
    n_grow : int or None
        Number of dilation steps each seed grows over occupied bins; ``None`` grows without
        limit, so that each object is a whole connected component of occupied bins (for end
        points spread along skeletons, see ``stop_at_reversal`` of :func:`follow_flows`).
    link : int
        Bins at most this far apart (Chebyshev distance) are neighbours when growing: 1 joins
        touching bins only, 2 also bridges one empty bin (for end points strung out along a
        skeleton with small gaps).

    Returns
    -------
    np.ndarray
        ``int32`` label image ``shape``: ``1..n`` objects (numbered from the strongest peak
        down), 0 for the background and for pixels whose end point joined no object.

    Notes
    -----
    The method (after Cellpose):

    1. Round each end point to the nearest pixel and count end points per pixel: the
       histogram ``h``.
    2. Smooth ``h`` by summing it over the ``3x3`` (``3x3x3``) box: ``s``.
    3. Seeds are bins with ``h > 0`` where ``s`` is the maximum of its ``5x5`` (``5x5x5``)
       window and ``s >= min_seed_count``.
    4. Seeds are visited from the largest ``s`` down (ties in raster order); each claims its
       bin and grows for ``n_grow`` steps into the neighbouring bins (within ``link``: the
       8- or 26-neighbours for ``link=1``) that received at least one end point and are
       unclaimed. A seed inside an already claimed
       bin (a second peak of the same sink, e.g. on a plateau) is skipped. With
       ``n_grow=None`` growth goes on until no unclaimed occupied bin touches the object.
    5. Each pixel gets the label of the bin its end point lands in.
    """
    mask = _check_mask(mask)
    shape = tuple(int(s) for s in shape)
    if shape != mask.shape:
        raise InputError(f"shape {shape} differs from the mask's shape {mask.shape}")
    ndim = mask.ndim
    final = np.asarray(final, dtype=np.float64)
    n = int(np.count_nonzero(mask))
    if final.shape != (n, ndim):
        raise InputError(
            f"final positions must have shape (n_pixels, ndim) = {(n, ndim)}, got {final.shape}"
        )
    labels = np.zeros(shape, dtype=np.int32)
    if n == 0:
        return labels
    bins = np.rint(final).astype(np.int64)
    np.clip(bins, 0, np.array(shape) - 1, out=bins)
    flat = np.ravel_multi_index(tuple(bins.T), shape)
    hist = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    smooth = ndimage.correlate(hist, np.ones((3,) * ndim, dtype=hist.dtype), mode="constant")
    peaks = ndimage.maximum_filter(smooth, size=_PEAK_WINDOW, mode="constant")
    is_seed = (smooth == peaks) & (smooth >= min_seed_count) & (hist > 0)
    link = int(link)
    if link < 1:
        raise InputError(f"link must be >= 1, got {link}")
    padded_shape = tuple(s + 2 * link for s in shape)
    seed_idx = np.flatnonzero(np.pad(is_seed, link))
    strength = np.pad(smooth, link).ravel()[seed_idx]
    seed_idx = seed_idx[np.argsort(-strength, kind="stable")]
    occupied = np.pad(hist > 0, link).ravel()
    strides = [int(np.prod(padded_shape[a + 1 :])) for a in range(ndim)]
    steps_around = itertools.product(range(-link, link + 1), repeat=ndim)
    offsets = np.array([int(np.dot(s, strides)) for s in steps_around if any(s)], dtype=np.int64)
    steps = int(np.prod(shape)) if n_grow is None else int(n_grow)
    bin_labels = _grow_seeds(occupied, seed_idx, offsets, steps)
    inner = tuple(slice(link, s - link) for s in padded_shape)
    bin_labels = bin_labels.reshape(padded_shape)[inner]
    labels[mask] = bin_labels.ravel()[flat]
    return labels


# --------------------------------------------------------------------------- quality


def flow_error(labels: np.ndarray, flows: np.ndarray, method: str = "heat") -> np.ndarray:
    """Per object, how far the given flows are from the ideal flows of the object's mask.

    Parameters
    ----------
    labels : np.ndarray
        Integer label image (2D or 3D), e.g. a reconstruction by :func:`cluster_endpoints`.
    flows : np.ndarray
        Flow field ``(ndim, *labels.shape)`` the labels were reconstructed from (e.g. the
        network's prediction, in the units of :func:`~deepscope.flows.flow_targets`).
    method : {"heat", "distance"}
        Flow target the given flows stand for.

    Returns
    -------
    np.ndarray
        ``float64`` array of length ``labels.max()``: entry ``i`` is the error of label
        ``i + 1``, the mean over the object's pixels of the squared distance
        ``|recomputed - given|**2`` (summed over components), where ``recomputed`` is
        ``flow_targets(labels, method)``. ``NaN`` for labels that are absent. For unit vectors
        the error is 0 when they agree and 2 for random directions; Cellpose drops objects
        above 0.4.
    """
    labels = _check_labels(labels)
    flows = np.asarray(flows)
    _check_flows_shape(flows.shape, labels.shape)
    top = int(labels.max()) if labels.size else 0
    if top == 0:
        return np.zeros(0, dtype=np.float64)
    ideal = flow_targets(labels, method)
    sq = ((ideal.astype(np.float64) - flows) ** 2).sum(axis=0)
    flat = labels.ravel()
    sums = np.bincount(flat, weights=sq.ravel(), minlength=top + 1)[1:]
    counts = np.bincount(flat, minlength=top + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _touching_pairs(labels: np.ndarray) -> np.ndarray:
    """``(P, 2)`` array of the distinct pairs ``(i < j)`` of objects that share a face."""
    pairs = []
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        u, v = a[:-1].ravel(), a[1:].ravel()
        keep = (u > 0) & (v > 0) & (u != v)
        pairs.append(np.sort(np.stack([u[keep], v[keep]], axis=1), axis=1))
    return np.unique(np.concatenate(pairs), axis=0)


def merge_fragments(
    labels: np.ndarray,
    flows: np.ndarray,
    errors: np.ndarray,
    threshold: float,
    method: str = "heat",
) -> np.ndarray:
    """Join touching objects that fail the flow-error check alone and pass it together.

    A cell about to divide, or one cut at a constriction, can come out of the clustering as
    two objects whose flows still point to one common centre: each half then has a high
    :func:`flow_error` and would be dropped. For every pair of touching objects at least one
    of which is above ``threshold``, in order of decreasing summed error, the error of their
    union is computed; if it is at most ``threshold`` and below both, the second object
    joins the first. Two touching cells with flows of their own have a union error far
    above either and stay apart.

    Parameters
    ----------
    labels : np.ndarray
        Label image (2D or 3D), changed in place.
    flows : np.ndarray
        The flows the labels came from, ``(ndim, *labels.shape)``.
    errors : np.ndarray
        :func:`flow_error` of ``labels`` (entry ``i`` for label ``i + 1``); updated in place:
        a joined object gets the union's error, the absorbed one ``NaN``.
    threshold : float
        The flow-error threshold of the check.
    method : {"heat", "distance"}
        Flow target the flows stand for.

    Returns
    -------
    np.ndarray
        ``labels``, with the joined objects under the first object's label.
    """
    failing = ~(errors <= threshold)
    if not failing.any():
        return labels
    pairs = _touching_pairs(labels)
    pairs = pairs[failing[pairs[:, 0] - 1] | failing[pairs[:, 1] - 1]]
    order = np.argsort(-(errors[pairs[:, 0] - 1] + errors[pairs[:, 1] - 1]), kind="stable")
    boxes = ndimage.find_objects(labels)
    owner = np.arange(errors.size + 1)  # label -> the label it was joined to
    for i, j in pairs[order]:
        i, j = int(owner[i]), int(owner[j])
        if i == j or (errors[i - 1] <= threshold and errors[j - 1] <= threshold):
            continue
        box = tuple(  # both objects and a margin of one pixel
            slice(max(min(a.start, b.start) - 1, 0), min(max(a.stop, b.stop) + 1, n))
            for a, b, n in zip(boxes[i - 1], boxes[j - 1], labels.shape, strict=True)
        )
        crop = labels[box]
        union = ((crop == i) | (crop == j)).astype(np.int32)
        joined = flow_error(union, flows[(slice(None), *box)], method)[0]
        if joined <= threshold and joined < min(errors[i - 1], errors[j - 1]):
            crop[crop == j] = i
            owner[owner == j] = i
            errors[i - 1], errors[j - 1] = joined, np.nan
            boxes[i - 1] = box
    return labels


# --------------------------------------------------------------------------- whole pipeline


def _fill_and_filter(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Keep each object's largest connected piece (pixels whose flows end at the object's
    sink but lie apart from it are specks, hundreds of them in volumes reconstructed from
    slices), fill its holes (into background only), drop small objects, renumber."""
    out = keep_largest_pieces(labels)
    for k, sl in enumerate(ndimage.find_objects(out), start=1):
        if sl is None:
            continue
        box = out[sl]
        filled = ndimage.binary_fill_holes(box == k)
        box[filled & (box == 0)] = k
    counts = np.bincount(out.ravel())
    keep = counts >= min_size
    keep[0] = False
    lut = np.zeros(counts.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[out]


def flows_to_labels(
    probability: np.ndarray,
    flows: np.ndarray | torch.Tensor,
    prob_threshold: float = 0.5,
    flow_threshold: float | None = 0.4,
    min_size: int = 15,
    n_steps: int = 200,
    device: str | torch.device = "cpu",
    method: str = "heat",
) -> np.ndarray:
    """Instance labels from a foreground probability and a flow field (2D or 3D).

    Parameters
    ----------
    probability : np.ndarray
        Foreground probability image ``shape`` (2D ``(Y, X)`` or 3D ``(Z, Y, X)``).
    flows : np.ndarray or torch.Tensor
        Flow field ``(ndim, *shape)`` (unit vectors inside objects, as made by
        :func:`~deepscope.flows.flow_targets`); a tensor already on ``device`` is followed
        there without a copy.
    prob_threshold : float
        Pixels with ``probability > prob_threshold`` are foreground.
    flow_threshold : float or None
        Objects whose :func:`flow_error` exceeds this are dropped; ``None`` keeps all.
    min_size : int
        Objects with fewer pixels (after hole filling) are removed.
    n_steps : int
        Euler steps of :func:`follow_flows` (step size 1 pixel).
    device : str or torch.device
        Device for following the flows.
    method : {"heat", "distance"}
        Flow target the flows stand for. ``"heat"``: Cellpose's reconstruction (pixels gather
        at one sink per object; seeds grow 5 steps). ``"distance"``: pixels stop on the
        medial axis (``stop_at_reversal=True``) and each set of end-point bins connected
        with gaps of at most one bin and holding a seed is one object (``n_grow=None,
        link=2``); an object whose distance field has several maxima joined by a thin neck
        (a lobed nucleus) may come out split, so prefer ``"heat"`` for such shapes. Also
        used by the flow-error check.

    Returns
    -------
    np.ndarray
        ``int32`` label image ``shape``, objects numbered ``1..n``, 0 background.

    Notes
    -----
    Steps: foreground mask; :func:`follow_flows` of the mask's pixels through the whole
    field (the flows are not zeroed outside the mask, so pixels cross a small hole of low
    probability inside an object instead of stalling at its edge; a network trained on
    :func:`~deepscope.flows.flow_targets` predicts near-zero flows in the background);
    :func:`cluster_endpoints` (as set by ``method``); touching objects that pass the
    flow-error check only together joined (:func:`merge_fragments`); objects with a flow
    error above ``flow_threshold`` removed (computed on the masks as clustered, before hole
    filling);
    holes of each object filled where they are background; objects smaller than
    ``min_size`` removed; labels renumbered in the order of the clustering.
    """
    if method not in FLOW_METHODS:
        raise ConfigError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
    probability = np.asarray(probability)
    mask = _check_mask(probability > prob_threshold)
    flows_np = (
        flows.detach().cpu().numpy() if isinstance(flows, torch.Tensor) else np.asarray(flows)
    )
    _check_flows_shape(flows_np.shape, mask.shape)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    skeleton = method == "distance"
    final = follow_flows(
        flows, mask, n_steps=n_steps, step=1.0, device=device, stop_at_reversal=skeleton
    )
    if skeleton:
        labels = cluster_endpoints(final, mask, mask.shape, n_grow=None, link=2)
    else:
        labels = cluster_endpoints(final, mask, mask.shape)
    if flow_threshold is not None and labels.max() > 0:
        errors = flow_error(labels, flows_np, method)
        labels = merge_fragments(labels, flows_np, errors, flow_threshold, method)
        bad = np.flatnonzero(~(errors <= flow_threshold)) + 1
        if bad.size:
            labels[np.isin(labels, bad)] = 0
    labels, _ = _sequential(labels)
    return _fill_and_filter(labels, min_size)
