"""One row per object: position, size, shape and intensity (scikit-image regionprops)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops_table

from deepscope.errors import InputError
from deepscope.io.atomic import atomic_output

_PROPS_2D = (
    "label",
    "centroid",
    "bbox",
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "major_axis_length",
    "minor_axis_length",
    "eccentricity",
    "solidity",
    "orientation",
)
_PROPS_3D = (
    "label",
    "centroid",
    "bbox",
    "area",
    "equivalent_diameter_area",
    "major_axis_length",
    "minor_axis_length",
    "solidity",
)
_RENAME = {"equivalent_diameter_area": "equivalent_diameter"}
_PHYSICAL = (  # besides the centroid, which is the pixel centroid times the pixel size
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "major_axis_length",
    "minor_axis_length",
)


#: label ids below this are used as they are (scikit-image's tables hold one entry per id)
DIRECT_IDS = 2**24


def warn_if_binary(mask: np.ndarray, name: str) -> None:
    """Warn when an instance mask holds only 0 and one other value (1, 255 ...) over several
    separate regions: most likely a binary (foreground) mask, which would be scored,
    trained and counted as one object."""
    top = mask.max() if mask.size else 0
    if top == 0 or (mask[mask > 0] != top).any():
        return
    _, regions = ndi.label(mask)
    if regions > 1:
        warnings.warn(
            f"{name} holds only 0 and {top} in {regions} separate regions, so they count as ONE "
            "object; if it is a binary mask, give each object its own label first "
            "(skimage.measure.label)",
            stacklevel=3,
        )


def keep_largest_pieces(labels: np.ndarray) -> np.ndarray:
    """``labels`` with each object cut down to its largest connected piece (diagonal
    neighbours connect); its other pieces become background. Reconstructions and
    nearest-neighbour resizing leave specks apart from an object that would widen its
    bounding box and make it several regions. Returns a copy."""
    out = np.array(labels, copy=True)
    touching = np.ones((3,) * out.ndim, dtype=bool)
    for k, sl in enumerate(ndi.find_objects(out), start=1):
        if sl is None:
            continue
        box = out[sl]
        pieces, n = ndi.label(box == k, structure=touching)
        if n > 1:
            largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
            box[(pieces > 0) & (pieces != largest)] = 0
    return out


def sequential_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as int32 ids that index tables, and the original id of each (``ids[new] =
    old``): kept as they are below :data:`DIRECT_IDS`, else renumbered ``1..n`` (0 stays
    background). Any integer ids are fine, up to 2**64 - 1, and floats that hold whole
    numbers (as some programs save label images); negative ones, fractions and boolean
    masks are an :class:`InputError`."""
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"labels must be 2D or 3D, got shape {labels.shape}")
    if labels.size == 0:
        raise InputError(f"the labels are empty (shape {labels.shape}); give a label image")
    if labels.dtype == bool:
        raise InputError(
            "labels are a boolean mask, which is one object; give each object its own "
            "number first (skimage.measure.label(mask))"
        )
    if np.issubdtype(labels.dtype, np.floating):
        whole = np.isfinite(labels).all() and (np.mod(labels, 1) == 0).all()
        if not whole or np.abs(labels).max() >= 2**63:
            raise InputError(
                f"labels must be whole numbers, got {labels.dtype} values that are not; give "
                "an integer label image: 0 for background, 1, 2, ... for objects"
            )
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be integers, got {labels.dtype}")
    if labels.min() < 0:
        raise InputError(
            "labels must not be negative: give 0 for background, 1, 2, ... for objects"
        )
    largest = int(labels.max()) if labels.size else 0
    if largest < DIRECT_IDS:  # ids already small enough for tables indexed by id
        return labels.astype(np.int32, copy=False), np.arange(largest + 1)
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32), ids


def pixel_sizes(pixel_size, ndim: int) -> tuple[float, ...] | None:
    """The size of a pixel in micrometres along each of ``ndim`` spatial axes, from one
    number, one per axis (``(z,) y, x``) or a dict by axis letter as
    :class:`~deepscope.io.Image` holds it (``{'Y': 0.65, 'X': 0.65}``); ``None`` stays None.
    An :class:`InputError` for anything else, or for sizes that are not positive."""
    if pixel_size is None:
        return None
    axes = "YX" if ndim == 2 else "ZYX"
    if isinstance(pixel_size, dict):
        missing = [a for a in axes if a not in pixel_size]
        if missing:
            raise InputError(
                f"pixel_size has no size for axis {', '.join(missing)}: give one per axis "
                f"{', '.join(axes)}, e.g. {dict.fromkeys(axes, 0.5)}"
            )
        pixel_size = [pixel_size[a] for a in axes]
    try:
        values = tuple(float(v) for v in np.broadcast_to(np.asarray(pixel_size, float), (ndim,)))
    except (TypeError, ValueError):
        raise InputError(
            f"pixel_size needs one positive number or {ndim} (one per axis {axes}), "
            f"got {pixel_size!r}"
        ) from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"pixel_size must be positive micrometres, got {pixel_size!r}")
    return values


def check_intensities(image: np.ndarray, name: str = "the intensity image") -> np.ndarray:
    """An intensity image to measure, refused in one line when its values are not real
    finite numbers (one NaN pixel would make its object's every intensity NaN, and a
    range on them drop the object unseen)."""
    if image.dtype == bool:
        return image.view(np.uint8)
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"{name} has dtype {image.dtype}; give real numbers")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise InputError(
            f"{name} contains NaN or infinite values; replace them (numpy.nan_to_num) "
            "or measure without intensities"
        )
    return image


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    pixel_size: Sequence[float] | dict | float | None = None,
) -> list[dict]:
    """Measure every object of an integer label image.

    Parameters
    ----------
    labels : ``(Y, X)`` or ``(Z, Y, X)`` integer labels, 0 = background.
    image : optional intensities of the same spatial shape, or channel-last
        ``(*spatial, C)``; adds mean/min/max/integrated intensity (per channel).
    pixel_size : optional size of a pixel in micrometres (see :func:`pixel_sizes`: one
        number, one per spatial axis, or a dict by axis letter); adds physical columns:
        ``centroid_<axis>_um``, ``area_um2`` (``volume_um3`` in 3D), ``perimeter_um``
        (2D, square pixels only), ``equivalent_diameter_um``, ``major/minor_axis_length_um``.

    Returns
    -------
    list of dict, one per object, in label order; empty when there is no object.
    """
    labels, ids = sequential_labels(labels)  # any ids, without tables as long as the largest
    pixel_size = pixel_sizes(pixel_size, labels.ndim)
    image = None if image is None else check_intensities(np.asarray(image))
    if image is not None and image.shape[: labels.ndim] != labels.shape:
        first = image.ndim == labels.ndim + 1 and image.shape[1:] == labels.shape
        raise InputError(
            f"image shape {image.shape} does not match labels {labels.shape}; "
            + (
                "its channels come first: give them last (Image.as_axes('YXC'), or "
                "numpy.moveaxis(image, 0, -1))"
                if first
                else "give the image the labels were made from"
            )
        )
    props = _PROPS_2D if labels.ndim == 2 else _PROPS_3D
    if image is not None:
        props = (*props, "intensity_mean", "intensity_min", "intensity_max")
    with warnings.catch_warnings():  # a flat 3D object has no hull: its solidity is NaN below
        warnings.filterwarnings("ignore", message="Failed to get convex hull image")
        warnings.filterwarnings("ignore", message="divide by zero", category=RuntimeWarning)
        table = regionprops_table(labels, intensity_image=image, properties=props)
    n = len(table["label"])
    rows = []
    axes = "yx" if labels.ndim == 2 else "zyx"
    for i in range(n):
        row: dict = {}
        for key, values in table.items():
            name = _rename(key, axes)
            row[name] = values[i].item() if hasattr(values[i], "item") else values[i]
        row["label"] = ids[row["label"]].item()  # the id the object had
        if not np.isfinite(row.get("solidity", 0.0)):  # a flat object has no hull volume
            row["solidity"] = float("nan")
        if image is not None:
            for key in [k for k in row if k.startswith("mean_intensity")]:
                row[key.replace("mean", "integrated")] = row[key] * row["area"]
        rows.append(row)
    if pixel_size is not None and n:
        _add_physical(rows, labels, pixel_size, axes)
    return rows


def object_columns(
    ndim: int, channels: tuple[int, ...] | None = (), pixel_size: Sequence[float] | None = None
) -> list[str]:
    """The columns :func:`measure_objects` writes for ``ndim``-D labels with an image whose
    shape goes on past the spatial axes by ``channels`` (``()`` grey, ``(C,)`` channel-last,
    ``None`` no image) and the given ``pixel_size``, whether or not there are objects."""
    labels = np.zeros((5,) * ndim, dtype=np.int32)
    labels[(slice(1, 4),) * ndim] = 1
    image = None if channels is None else np.zeros(labels.shape + tuple(channels), np.float32)
    return list(measure_objects(labels, image, pixel_size)[0])


def _add_physical(rows: list[dict], labels: np.ndarray, spacing: tuple, axes: str) -> None:
    # scikit-image measures a perimeter in physical units only for square pixels
    square = len(set(spacing)) == 1
    props = [p for p in _PHYSICAL if p != "perimeter" or (labels.ndim == 2 and square)]
    table = regionprops_table(labels, properties=props, spacing=spacing)
    area_name = "area_um2" if labels.ndim == 2 else "volume_um3"
    for i, row in enumerate(rows):
        for axis, step in zip(axes, spacing, strict=True):  # as a shifted window gives it too
            row[f"centroid_{axis}_um"] = row[f"centroid_{axis}"] * step
        for key, values in table.items():
            base = key.partition("-")[0]
            if base == "area":
                name = area_name
            else:
                name = f"{_RENAME.get(base, base)}_um"
            row[name] = float(values[i])


def _rename(key: str, axes: str) -> str:
    base, _, index = key.partition("-")
    base = _RENAME.get(base, base)
    if base.startswith("intensity_"):
        base = base.split("_", 1)[1] + "_intensity"
    if not index:
        return base
    if base == "centroid":
        return f"centroid_{axes[int(index)]}"
    if base == "bbox":
        k = int(index)
        side = "min" if k < len(axes) else "max"
        return f"bbox_{side}_{axes[k % len(axes)]}"
    return f"{base}_ch{index}"


def write_table(
    rows: Sequence[dict], path: str | Path, columns: Sequence[str] | None = None
) -> Path:
    """Write rows to CSV atomically; ``columns`` default to the keys of the first row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or (rows[0].keys() if rows else ["label"]))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
    return path


def _fmt(value):
    if isinstance(value, float):  # 10 digits: sums of intensities pass a million
        return f"{value:.10g}"
    return value
