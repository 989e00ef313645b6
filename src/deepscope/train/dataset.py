"""Training data in memory: normalised images, task targets, and a seeded patch sampler."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscope.data.augment import Augmentation, augment, random_warp, warp_window
from deepscope.data.layout import to_channel_first, to_spatial
from deepscope.data.normalize import Normalization, dataset_bounds, input_bounds, normalize
from deepscope.data.patches import pad_to_shape, sample_patch_origin
from deepscope.errors import AxesError, InputError
from deepscope.io import Image, list_images, match_pairs, read_image
from deepscope.io.image import refuse_time_series
from deepscope.measure.regions import warn_if_binary
from deepscope.metrics.restoration import check_reference
from deepscope.tasks.base import Task, integer_mask, refuse_intensity_image


@dataclass
class Sample:
    """One training image ``(C, *spatial)`` float32, its target and the raw ground truth."""

    name: str
    image: np.ndarray
    target: np.ndarray
    truth: np.ndarray
    foreground: np.ndarray


def read_truth(path: Path, task: Task, ndim: int, axes: str | None = None) -> np.ndarray:
    """A ground-truth file as ``task`` needs it: a target image ``(C, *spatial)`` float32
    for tasks whose targets are images, else a spatial mask. ``axes``, the user's axes of
    the images, apply to it too (without ``C`` where it has no channel axis)."""
    truth = read_image(path)
    if axes is not None:
        fitting = axes if len(axes) == truth.data.ndim else axes.replace("C", "")
        if len(fitting) == truth.data.ndim:
            truth = Image(truth.data, fitting)
    refuse_time_series(truth, path.name, "give one time point per file: save each as its own")
    if task.target_is_image:
        target = to_channel_first(truth.data, truth.axes, ndim).astype(np.float32)
        check_reference(target, f"target {path.name}")
        return target
    name = f"mask {path.name}"
    mask = integer_mask(to_spatial(truth.data, truth.axes, ndim, name), name)
    if task.instance_labels:
        refuse_intensity_image(mask, name)
        warn_if_binary(mask, name)
    return mask


def fit_normalization(normalization: Normalization, raws: Sequence[np.ndarray]) -> Normalization:
    """``normalization`` ready to apply: mode ``dataset`` without bounds gets them measured
    on the channel-first training images ``raws``; every other setting is returned as it is."""
    if normalization.mode != "dataset" or normalization.bounds is not None:
        return normalization
    bounds = dataset_bounds(raws, normalization.low, normalization.high)
    return normalization.model_copy(update={"bounds": bounds})


def read_pairs(
    image_dir: Path, mask_dir: Path | None, task: Task, ndim: int, axes: str | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, raw image (C, *spatial), truth)`` for image/mask pairs matched by stem,
    checked to match pixel for pixel and to share one channel count. Without ``mask_dir``
    the raw image is its own truth."""
    if mask_dir is None:
        paths = [(path, None) for path in list_images([image_dir])]
    else:
        paths = match_pairs(image_dir, mask_dir, task.truth_name)
    pairs = []
    for image_path, mask_path in paths:
        image = read_image(image_path, axes=axes)
        refuse_time_series(
            image,
            image_path.name,
            "training reads one image per file: save each time point as a file of its own",
        )
        try:
            raw = to_channel_first(image.data, image.axes, ndim)
        except AxesError as err:
            raise AxesError(f"{image_path.name}: {err}") from None
        if ndim == 3 and raw.shape[1] < 2:
            raise InputError(
                f"{image_path.name} is not a volume (axes {image.axes}, shape "
                f"{tuple(image.data.shape)}) but the training is 3D (ndim 3); give ZYX stacks, "
                "or train in 2D"
            )
        if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
            raise InputError(
                f"training image {image_path.name} contains NaN or infinite values; replace "
                "them (with 0 or the background level, say) before training"
            )
        y = raw.astype(np.float32) if mask_path is None else read_truth(mask_path, task, ndim, axes)
        if raw.shape[1:] != y.shape[-ndim:]:
            raise InputError(
                f"image {image_path.name} has spatial shape {raw.shape[1:]} but its target "
                f"{mask_path.name} has {y.shape[-ndim:]}; targets must match their images "
                "pixel for pixel"
            )
        pairs.append((image_path.stem, raw, y))
    first: dict[int, str] = {}
    for stem, raw, _ in pairs:
        first.setdefault(raw.shape[0], stem)
    if len(first) > 1:
        examples = ", ".join(f"{stem} has {n}" for n, stem in sorted(first.items()))
        raise InputError(
            f"training images have different channel counts ({examples}); give images "
            "with the same channels (or pass --axes)"
        )
    return pairs


def build_samples(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    task: Task,
    normalization: Normalization,
) -> list[Sample]:
    """Normalise the raw images of ``read_pairs`` and build the task's targets.

    Self-supervised tasks make their targets from the normalised image itself; their truths,
    when given, are clean images that only score the model.
    """
    samples = []
    for name, raw, y in pairs:
        x = normalize(raw, normalization)
        if task.self_supervised:
            target = task.make_target(x)
        elif task.target_is_image:
            target = task.make_target(y, input_bounds(raw, normalization))
        else:
            target = task.make_target(y)
        samples.append(Sample(name, x, target, y, np.flatnonzero(task.foreground(target))))
    return samples


def load_samples(
    image_dir: Path,
    mask_dir: Path | None,
    task: Task,
    normalization: Normalization,
    ndim: int,
    axes: str | None = None,
) -> list[Sample]:
    """Read image/mask pairs (:func:`read_pairs`) and build samples (:func:`build_samples`)."""
    return build_samples(read_pairs(image_dir, mask_dir, task, ndim, axes), task, normalization)


def split_samples(
    samples: Sequence[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of the samples (at least one, and at least one left for
    training) for validation, reproducibly."""
    if len(samples) < 2:
        raise InputError("need at least 2 training images to hold some out for validation")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(max(1, round(fraction * len(samples))), len(samples) - 1)  # one left to train
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


def foreground_probabilities(samples: Sequence[Sample]) -> np.ndarray:
    """Pick each sample in proportion to its foreground pixels, so that every foreground
    pixel of the set is equally likely; an image without foreground counts as the smallest
    non-empty one, so background-only images are still seen."""
    counts = np.array([s.foreground.size for s in samples], dtype=float)
    floor = counts[counts > 0].min() if (counts > 0).any() else 1.0
    counts = np.where(counts > 0, counts, floor)
    return counts / counts.sum()


def object_probabilities(samples: Sequence[Sample]) -> np.ndarray:
    """Pick each sample in proportion to its annotated objects (distinct non-zero labels of
    its mask), so that every object of the set is equally likely to be drawn from; an image
    without objects counts as one object, so background-only images are still seen."""
    if any(s.truth.ndim != s.image.ndim - 1 for s in samples):
        raise InputError(
            "sample_images_by: objects needs label masks (an instance task); "
            "use 'foreground' or 'uniform' for image targets"
        )
    counts = np.array([max(1, np.unique(s.truth[s.truth > 0]).size) for s in samples], float)
    return counts / counts.sum()


IMAGE_WEIGHTS = {"foreground": foreground_probabilities, "objects": object_probabilities}


class PatchSampler:
    """Random training batches of patches, reproducible from its generator state."""

    def __init__(
        self,
        samples: Sequence[Sample],
        patch_size: int,
        batch_size: int,
        augmentation: Augmentation | None,
        foreground_fraction: float,
        rng: np.random.Generator,
        batch_fn: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple] | None = None,
        same_intensity: bool = False,
        sample_images_by: str = "uniform",
    ) -> None:
        if not samples:
            raise InputError("no training images found")
        self.samples = list(samples)
        if sample_images_by != "uniform" and sample_images_by not in IMAGE_WEIGHTS:
            raise ValueError(
                "sample_images_by must be 'uniform', 'foreground' or 'objects', "
                f"not {sample_images_by!r}"
            )
        weights = IMAGE_WEIGHTS.get(sample_images_by)
        self.image_probabilities = weights(self.samples) if weights else None
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.foreground_fraction = foreground_fraction
        self.rng = rng
        self.batch_fn = batch_fn
        self.same_intensity = same_intensity

    def patch(self) -> tuple[np.ndarray, np.ndarray]:
        """One (image, target) patch from a random sample; with zoom or free rotation
        (2D), cut from a larger window around the same place and resampled."""
        s = self.samples[self._pick_index()]
        nd = s.image.ndim - 1
        spatial = s.image.shape[1:]
        warps = self.augmentation is not None and self.augmentation.warps and nd == 2
        size = warp_window(self.patch_size, self.augmentation) if warps else self.patch_size
        patch_shape = tuple(min(size, n) for n in spatial)
        origin = sample_patch_origin(
            spatial, patch_shape, self.rng, s.foreground, self.foreground_fraction
        )
        window = tuple(slice(o, o + p) for o, p in zip(origin, patch_shape, strict=True))
        x = s.image[(slice(None), *window)]
        y = s.target[(..., *window)]
        full = (size,) * nd
        x, y = pad_to_shape(x, full), pad_to_shape(y, full)
        if warps:
            x, y = random_warp(x, y, self.patch_size, self.augmentation, self.rng)
        if self.augmentation is not None:
            x, y = augment(x, y, self.augmentation, self.rng, self.same_intensity)
        return x, y

    def _pick_index(self) -> int:
        if self.image_probabilities is None:
            return int(self.rng.integers(len(self.samples)))
        return int(self.rng.choice(len(self.samples), p=self.image_probabilities))

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """A batch ``(B, C, *patch)`` of images and ``(B, ...)`` of targets (``batch_fn``
        applied to the stacked patches)."""
        pairs = [self.patch() for _ in range(self.batch_size)]
        images = np.stack([p[0] for p in pairs])
        targets = np.stack([p[1] for p in pairs])
        if self.batch_fn is not None:
            images, targets = self.batch_fn(images, targets, self.rng)
        return images, targets


def check_training_data(
    train: Sequence[Sample], val: Sequence[Sample], task: Task, separate_val: bool
) -> None:
    """Before any step: masks that annotate nothing cannot teach or score a segmentation
    (every score would read 1.0 on nothing), and validation images must have the training
    images' channels. ``separate_val``: the validation images were given, not held out."""
    if task.output_kind == "labels":
        for samples, which in ((train, "training"), (val, "validation")):
            if samples and not any(s.truth.any() for s in samples):
                held_out = " (held out from --images: give --val-images/--val-masks)"
                raise InputError(
                    f"no {which} mask holds an object (all are 0); annotate the objects, or "
                    "check that the masks folder is the right one"
                    + (held_out if which == "validation" and not separate_val else "")
                )
    channels = train[0].image.shape[0] if train else None
    for sample in val:
        if sample.image.shape[0] != channels:
            raise InputError(
                f"validation image {sample.name} has {sample.image.shape[0]} channel(s) but the "
                f"training images have {channels}; give validation images like the training ones"
            )
