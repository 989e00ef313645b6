"""Pair the images of one folder with the masks (or targets) of another by file stem."""

from __future__ import annotations

import os
from pathlib import Path

from deepscope.errors import InputError, PairingError
from deepscope.io.paths import image_stem, is_image_path, split_folder_dataset, supported_list

__all__ = ["match_pairs", "some_names"]

_MAX_NAMED = 5


def _by_stem(folder: Path, role: str) -> dict[str, Path]:
    """The image files of ``folder`` keyed by stem."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise InputError(f"{role} folder '{folder}' {what}; pass the folder holding the {role}s")
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        raise InputError(
            f"cannot list {role} folder '{folder}' ({error.strerror or error}); "
            "check its permissions"
        ) from None
    files: dict[str, Path] = {}
    for entry in entries:
        if not is_image_path(entry):
            continue
        stem = image_stem(entry)
        if stem in files:
            raise PairingError(
                f"{role} folder '{folder}' has two files with stem {stem!r} "
                f"({files[stem].name}, {entry.name}); keep one of them"
            )
        files[stem] = entry
    if not files:
        raise InputError(f"{role} folder '{folder}' contains no image files ({supported_list()})")
    return files


def _with_inner(files: dict[str, Path], inner: str | None) -> dict[str, Path]:
    if inner is None:
        return files
    return {stem: Path(f"{path}:{inner}") for stem, path in files.items()}


def some_names(paths: list[Path]) -> str:
    """The file names of up to five ``paths``, and how many more there are."""
    shown = ", ".join(path.name for path in paths[:_MAX_NAMED])
    if len(paths) > _MAX_NAMED:
        shown += f", ... ({len(paths) - _MAX_NAMED} more)"
    return shown


def match_pairs(
    image_dir: str | os.PathLike[str], mask_dir: str | os.PathLike[str], partner: str = "mask"
) -> list[tuple[Path, Path]]:
    """Pair image files with mask files of the same stem.

    The stem is the file name without its image extension, so ``cell_01.tif`` pairs with
    ``cell_01.png`` and ``x.ome.tif`` has stem ``x``. Hidden and non-image files are
    ignored; sub-folders are not searched. A folder of HDF5 or zarr files that hold both
    images and masks is given as ``'folder:raw'`` and ``'folder:label'`` (the dataset
    inside every file).

    Parameters
    ----------
    image_dir : str or Path
        Folder of images.
    mask_dir : str or Path
        Folder of masks (or any targets).
    partner : str
        What ``mask_dir`` holds, as messages name it: ``"mask"`` or ``"target"``.

    Returns
    -------
    list of tuple of Path
        ``(image, mask)`` pairs sorted by stem.

    Raises
    ------
    InputError
        If a folder is missing or holds no image file.
    PairingError
        If an image has no mask or a mask has no image (the message names up to five of
        each and gives the counts), or a folder has two files with the same stem.

    Examples
    --------
    >>> match_pairs("train/images", "train/masks")  # doctest: +SKIP
    [(PosixPath('train/images/a.tif'), PosixPath('train/masks/a.tif')), ...]
    """
    image_dir, image_inner = split_folder_dataset(image_dir)
    mask_dir, mask_inner = split_folder_dataset(mask_dir)
    images = _with_inner(_by_stem(image_dir, "image"), image_inner)
    masks = _with_inner(_by_stem(mask_dir, partner), mask_inner)
    lonely_images = [images[stem] for stem in sorted(images.keys() - masks.keys())]
    lonely_masks = [masks[stem] for stem in sorted(masks.keys() - images.keys())]
    if lonely_images or lonely_masks:
        problems = []
        if lonely_images:
            count = len(lonely_images)
            noun = "image has" if count == 1 else "images have"
            problems.append(
                f"{count} {noun} no {partner} in '{mask_dir}': {some_names(lonely_images)}"
            )
        if lonely_masks:
            count = len(lonely_masks)
            noun = f"{partner} has" if count == 1 else f"{partner}s have"
            problems.append(f"{count} {noun} no image in '{image_dir}': {some_names(lonely_masks)}")
        raise PairingError(
            "; ".join(problems) + f"; give every image a {partner} with the same file name stem"
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]
