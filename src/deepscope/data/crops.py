"""Cell crops: folders of crops by class, fixed-size windows around objects, a balanced
batch sampler with the augmentations that suit crops, and a stratified split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from deepscope.data.augment import Augmentation, augment
from deepscope.data.layout import to_channel_first
from deepscope.data.normalize import Normalization, normalize
from deepscope.errors import InputError
from deepscope.io import list_images, read_image


def class_folders(
    root: str | Path, min_classes: int = 2
) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and ``(file, class index)`` for every image in
    a folder with one sub-folder per class, of which there must be ``min_classes`` (a
    training needs two; an evaluation may score one class)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder; give a folder with one sub-folder per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < min_classes:
        needs = "a classifier needs" if min_classes > 1 else "give"
        raise InputError(
            f"'{root}' has {len(classes)} sub-folder(s); {needs} one sub-folder per class"
            + (f" and at least {min_classes} classes" if min_classes > 1 else "")
        )
    items = []
    for index, name in enumerate(classes):
        items += [(path, index) for path in list_images([root / name])]
    return classes, items


def fit_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """A channel-first crop ``(C, Y, X)`` centre-cropped or zero-padded to ``(C, size, size)``."""
    out = np.zeros((crop.shape[0], size, size), dtype=np.float32)
    src, dst = [], []
    for n in crop.shape[1:]:
        if n >= size:
            start = (n - size) // 2
            src.append(slice(start, start + size))
            dst.append(slice(0, size))
        else:
            start = (size - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[(slice(None), *dst)] = crop[(slice(None), *src)]
    return out


def raw_crops(paths: Sequence[Path], axes: str | None = None) -> list[np.ndarray]:
    """Crop files as channel-first ``(C, Y, X)`` arrays, all with the same channel count."""
    crops = []
    for path in paths:
        image = read_image(path, axes=axes)
        crops.append(to_channel_first(image.data, image.axes, 2))
    channels = {c.shape[0] for c in crops}
    if len(channels) > 1:
        first = {}
        for path, crop in zip(paths, crops, strict=True):
            first.setdefault(crop.shape[0], Path(path).name)
        examples = ", ".join(f"{name} has {n}" for n, name in sorted(first.items()))
        raise InputError(
            f"crops have different channel counts ({examples}); give crops with the same "
            "channels, e.g. all grey or all RGB"
        )
    return crops


def read_crops(
    paths: Sequence[Path],
    size: int,
    normalization: Normalization,
    axes: str | None = None,
) -> np.ndarray:
    """Crops from files as a normalised float32 batch ``(N, C, size, size)``."""
    return prepare_crops(raw_crops(paths, axes), size, normalization)


def prepare_crops(
    raws: Sequence[np.ndarray], size: int, normalization: Normalization
) -> np.ndarray:
    """Channel-first crops, each normalised as a whole and then sized to ``size``, as a
    float32 batch ``(N, C, size, size)``."""
    return np.stack([fit_crop(normalize(c, normalization), size) for c in raws])


def crops_at(image: np.ndarray, centres: np.ndarray, size: int) -> np.ndarray:
    """Windows of ``size`` pixels of a channel-first 2D ``image (C, Y, X)`` centred on
    ``centres (N, 2)`` given as (y, x); windows that reach over the edge are zero-padded.
    Returns ``(N, C, size, size)`` float32."""
    half = size // 2
    padded = np.pad(image.astype(np.float32, copy=False), ((0, 0), (half, half), (half, half)))
    crops = np.empty((len(centres), image.shape[0], size, size), np.float32)
    for i, (cy, cx) in enumerate(centres):
        y, x = round(cy), round(cx)  # window [y - half, y - half + size) in image coordinates
        crops[i] = padded[:, y : y + size, x : x + size]
    return crops


def object_crops(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``size`` pixels centred on each object of a 2D label image.

    ``image`` is channel-first ``(C, Y, X)``; windows that reach over the image edge are
    zero-padded. Returns crops ``(N, C, size, size)`` and the object labels in the same
    order (ascending).
    """
    if labels.shape != image.shape[1:]:
        raise InputError(
            f"label image {labels.shape} and image {image.shape[1:]} differ in size; give the "
            "labels of this image"
        )
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size == 0:
        return np.zeros((0, image.shape[0], size, size), np.float32), ids
    centres = ndimage.center_of_mass(np.ones_like(labels, np.uint8), labels, ids)
    return crops_at(image, np.asarray(centres).reshape(-1, 2), size), ids


def stratified_split(
    labels: Sequence[int], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a reproducible split that holds out ``fraction`` of every class (at
    least one item of each class with two or more)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = min(len(members) - 1, max(1, round(fraction * len(members))))
        val += list(members[:n_val])
        train += list(members[n_val:])
    return np.sort(np.array(train, int)), np.sort(np.array(val, int))


def random_shift(crop: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """``crop`` moved by up to ``max_shift`` pixels per axis, zero-filled where it left."""
    if max_shift <= 0:
        return crop
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
    out = np.zeros_like(crop)
    h, w = crop.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = crop[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


class CropSampler:
    """Random training batches ``(B, C, S, S)`` of augmented crops and ``(B,)`` classes.

    ``balanced``: every class is equally likely in a batch (minority classes are seen as
    often as the majority); otherwise crops are drawn uniformly. ``batch_fn`` turns a batch
    into what the network and loss see (an autoencoder corrupts the crops there).
    """

    def __init__(
        self,
        crops: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        augmentation: Augmentation | None,
        max_shift: int,
        balanced: bool,
        rng: np.random.Generator,
        batch_fn: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple] | None = None,
    ) -> None:
        if len(crops) == 0:
            raise InputError("no training crops found")
        self.crops = crops
        self.labels = np.asarray(labels, np.int64)
        self.by_class = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.max_shift = max_shift
        self.balanced = balanced
        self.rng = rng
        self.batch_fn = batch_fn

    def index(self) -> int:
        if self.balanced:
            members = self.by_class[int(self.rng.integers(len(self.by_class)))]
            return int(members[self.rng.integers(len(members))])
        return int(self.rng.integers(len(self.crops)))

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        picks = [self.index() for _ in range(self.batch_size)]
        images = []
        for i in picks:
            crop = self.crops[i]
            if self.augmentation is not None:
                crop, _ = augment(
                    crop, np.zeros(crop.shape[1:], np.uint8), self.augmentation, self.rng
                )
                crop = random_shift(crop, self.max_shift, self.rng)
            images.append(crop)
        batch = np.stack(images).astype(np.float32, copy=False), self.labels[picks]
        return self.batch_fn(*batch, self.rng) if self.batch_fn is not None else batch
