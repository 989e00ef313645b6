"""The :class:`Image` record: an array with its axes, pixel size and origin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscope.errors import InputError
from deepscope.io.axes import transpose_axes, validate_axes
from deepscope.io.metadata import clean_pixel_size

__all__ = ["Image"]


@dataclass(frozen=True, eq=False)
class Image:
    """An image array with named axes.

    Parameters
    ----------
    data : numpy.ndarray
        The pixels.
    axes : str
        One letter per dimension of ``data`` from ``T, C, Z, Y, X`` (lower case is
        accepted and stored upper-cased), for example ``'ZYX'``.
    pixel_size : dict of str to float, optional
        Physical size of a pixel along spatial axes in micrometres, for example
        ``{'Y': 0.65, 'X': 0.65}``. Keys must be spatial axes (Z, Y, X) of ``axes``.
        ``None`` when unknown.
    source : str, optional
        Where the image came from (a path), for messages.

    Raises
    ------
    AxesError
        If ``axes`` does not fit ``data``.
    InputError
        If ``pixel_size`` names a non-spatial or missing axis or a non-positive size.

    Notes
    -----
    Images compare by identity (``eq=False``), since comparing arrays element-wise has
    no single truth value; compare ``image.data`` with :func:`numpy.array_equal`.

    Examples
    --------
    >>> image = Image(np.zeros((5, 64, 64), np.uint8), "zyx", {"Z": 2.0, "Y": 0.5, "X": 0.5})
    >>> image.axes
    'ZYX'
    >>> image.as_axes("CZYX").shape
    (1, 5, 64, 64)
    """

    data: np.ndarray
    axes: str
    pixel_size: dict[str, float] | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        axes = validate_axes(self.axes, data.ndim, name=self.source)
        pixel_size = clean_pixel_size(self.pixel_size, axes, name=self.source, strict=True)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "pixel_size", pixel_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`."""
        return tuple(self.data.shape)

    def channel(self, index: int) -> Image:
        """The image of one channel (axis ``C`` removed); an image without a ``C`` axis is
        its own channel 0. Another index is a one-line :class:`InputError`."""
        count = self.data.shape[self.axes.index("C")] if "C" in self.axes else 1
        if not 0 <= index < count:
            name = f"{Path(self.source).name}: " if self.source else ""
            raise InputError(
                f"{name}there is no channel {index}: the image has {count} channel(s), "
                f"numbered from 0 (axes {self.axes}); give a channel from 0 to {count - 1}"
            )
        if "C" not in self.axes:
            return self
        data = np.take(self.data, index, axis=self.axes.index("C"))
        return Image(data, self.axes.replace("C", ""), self.pixel_size, self.source)

    def as_axes(self, target: str) -> np.ndarray:
        """The data with dimensions in ``target`` order.

        Axes missing from the image are added with size 1; axes missing from ``target``
        are dropped, which is allowed only for size 1 (see :func:`transpose_axes`).

        Parameters
        ----------
        target : str
            Wanted axes, for example ``'CYX'``.

        Returns
        -------
        numpy.ndarray
            A view of :attr:`data`.
        """
        return transpose_axes(self.data, self.axes, target)


def refuse_time_series(image: Image, name: str, advice: str) -> None:
    """An :class:`InputError` when ``image`` holds more than one time point: ``name`` (e.g.
    the file's name) is a time series of so many points, then ``advice`` (what to do)."""
    points = image.data.shape[image.axes.index("T")] if "T" in image.axes else 1
    if points > 1:
        raise InputError(f"{name} is a time series ({points} time points); {advice}")
