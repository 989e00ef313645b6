"""3D flow output from a 2D flow model applied to the XY, XZ and YZ slices of a volume.

A 2D flow network predicts, for one image, the two in-plane components of the flow field
and an object logit. Run on every slice of a volume along each of its three axes, it gives
every voxel two estimates of each 3D flow component and three logits:

* XY slices (Z fixed) give ``(dy, dx)``,
* XZ slices (Y fixed) give ``(dz, dx)``,
* YZ slices (X fixed) give ``(dz, dy)``.

:func:`volume_output` averages the two estimates of each component and the three logits
into the raw output of a native 3D flow model, ``(4, Z, Y, X)`` (``dz, dy, dx`` scaled as
the network's, then the logit), which ``FlowsTask(ndim=3)`` turns into labels with
:func:`~deepscope.flows.flows_to_labels`. A volume with coarser Z steps than XY pixels
(``anisotropy`` = z step / xy step) is first stretched along Z, linearly, so that XZ and YZ
slices show objects with the proportions of the 2D training images.

The idea is Cellpose's 3D mode (Stringer et al. 2021); this is written from it, not from
its code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepscope.errors import InputError

__all__ = ["SliceFn", "resample_axis", "volume_output"]

#: a 2D flow network on a stack of slices: ``(N, C, H, W)`` -> ``(N, 3, H, W)`` raw output,
#: channels ``(flow along H, flow along W, object logit)``
SliceFn = Callable[[np.ndarray], np.ndarray]


def resample_axis(array: np.ndarray, size: int, axis: int) -> np.ndarray:
    """``array`` resized along ``axis`` to ``size`` samples by linear interpolation
    (pixel centres aligned: sample ``i`` of the result sits at ``(i + 0.5) * n / size -
    0.5`` of the ``n`` input samples, clamped at the ends); float32."""
    array = np.asarray(array, dtype=np.float32)
    n = array.shape[axis]
    if size == n:
        return array
    if size < 1:
        raise InputError(f"cannot resample an axis of {n} samples to {size}")
    pos = np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0, n - 1)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * array.ndim
    shape[axis] = size
    weight = (pos - low).astype(np.float32).reshape(shape)
    return np.take(array, low, axis=axis) * (1 - weight) + np.take(array, high, axis=axis) * weight


def _channel_first(volume: np.ndarray) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim == 3:
        volume = volume[None]
    if volume.ndim != 4 or volume.size == 0:
        raise InputError(
            f"slices of a volume need a 3D (Z, Y, X) or channel-first (C, Z, Y, X) array, "
            f"got shape {volume.shape}"
        )
    return volume


def _add_slices(
    raw_2d: SliceFn,
    volume: np.ndarray,
    axis: int,
    into: np.ndarray,
    components: tuple[int, int],
    batch_size: int,
) -> None:
    """Run ``raw_2d`` on the slices of the channel-first ``volume`` across spatial ``axis``
    (1 = Z, 2 = Y, 3 = X) and add their flows to channels ``components`` of ``into``
    ``(4, Z, Y, X)``, their logits to channel 3."""
    planes = np.moveaxis(volume, axis, 0)  # (N, C, a, b): a, b the other axes in order
    for start in range(0, planes.shape[0], batch_size):
        batch = np.ascontiguousarray(planes[start : start + batch_size], dtype=np.float32)
        out = np.asarray(raw_2d(batch))
        if out.shape != (batch.shape[0], 3, *batch.shape[2:]):
            raise InputError(
                f"a 2D flow model must give (N, 3, H, W) for slices {batch.shape}, got "
                f"{out.shape}: is it a 2D flows model?"
            )
        where = [slice(None)] * 3
        where[axis - 1] = slice(start, start + batch.shape[0])
        view = tuple(where)
        # out[:, k] is (n, a, b); into[c][view] is the same block with n at axis - 1
        for k, c in enumerate((*components, 3)):
            into[c][view] += np.moveaxis(out[:, k], 0, axis - 1)


def volume_output(
    raw_2d: SliceFn,
    volume: np.ndarray,
    anisotropy: float = 1.0,
    batch_size: int = 8,
) -> np.ndarray:
    """Raw 3D flow output of a volume from a 2D flow model run on its XY, XZ and YZ slices.

    Parameters
    ----------
    raw_2d : callable
        The 2D model: a stack of slices ``(N, C, H, W)`` (float32, as the volume is given:
        normalise the volume first) to its raw output ``(N, 3, H, W)``: the flow along H,
        the flow along W (both as the network gives them, e.g. scaled by ``FLOW_SCALE``)
        and the object logit.
    volume : np.ndarray
        ``(Z, Y, X)`` or channel-first ``(C, Z, Y, X)``.
    anisotropy : float
        Z step over XY pixel size (e.g. 2.2 for 0.28 um z steps and 0.127 um pixels). The
        volume is resized along Z to ``round(Z * anisotropy)`` slices (linear) before
        slicing, so XZ and YZ slices show objects in their true proportions, and the output
        resized back to ``Z``. Flows stay in the units of the stretched volume (XY pixels).
    batch_size : int
        Slices per call of ``raw_2d``.

    Returns
    -------
    np.ndarray
        ``(4, Z, Y, X)`` float32: ``(dz, dy, dx)``, each the mean of its two slice
        estimates (XZ and YZ for ``dz``, XY and YZ for ``dy``, XY and XZ for ``dx``), and
        the mean of the three logits: the layout of a native 3D flow model's raw output.

    Notes
    -----
    With ``anisotropy`` the flows, in XY pixels per step, are followed on the coarser Z
    grid, so they overshoot along Z by ``anisotropy``; they still converge. To reconstruct
    where the voxels are cubes instead, stretch the volume yourself
    (:func:`resample_axis`), call this with ``anisotropy=1`` and resize the labels back
    (nearest neighbour), as :meth:`deepscope.zoo.model.Model.predict` with ``slices3d``
    does.
    """
    x = _channel_first(volume)
    if not (np.isfinite(anisotropy) and anisotropy > 0):
        raise InputError(
            f"anisotropy must be a positive number (z step / xy step), got {anisotropy}"
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    z = x.shape[1]
    stretched = max(1, round(z * anisotropy))
    x = resample_axis(x, stretched, axis=1)
    out = np.zeros((4, *x.shape[1:]), np.float32)
    _add_slices(raw_2d, x, 1, out, (1, 2), batch_size)  # XY: (dy, dx)
    _add_slices(raw_2d, x, 2, out, (0, 2), batch_size)  # XZ: (dz, dx)
    _add_slices(raw_2d, x, 3, out, (0, 1), batch_size)  # YZ: (dz, dy)
    out[:3] /= 2
    out[3] /= 3
    return resample_axis(out, z, axis=1)
