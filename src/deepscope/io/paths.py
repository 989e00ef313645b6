"""Image file names: supported extensions, stems, ``file.h5:dataset`` paths and listing."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from deepscope.errors import InputError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "image_format",
    "image_stem",
    "is_image_path",
    "list_images",
    "split_path",
]

#: File extensions ``read_image`` understands (lower case; matching ignores case).
#: ``.ome.tif``/``.ome.tiff`` and ``.ome.zarr`` are covered by ``.tif``/``.tiff``/``.zarr``.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".tif",
    ".tiff",
    ".png",
    ".jpg",
    ".jpeg",
    ".npy",
    ".h5",
    ".hdf5",
    ".hdf",
    ".zarr",
)

_FORMATS = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".npy": "npy",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".zarr": "zarr",
}

# Endings removed to get a stem, longest first so that 'x.ome.tif' gives 'x'.
_STEM_ENDINGS = sorted((".ome.tif", ".ome.tiff", ".ome.zarr", *SUPPORTED_EXTENSIONS), key=len)[::-1]

# 'file.h5:dataset/path' or 'folder.zarr:array/path'.
_INNER_PATH = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hdf|zarr)):(?P<inner>.*)$", re.IGNORECASE)

_GLOB_CHARS = ("*", "?", "[")


def supported_list() -> str:
    """The supported extensions as a short comma-separated text for messages."""
    return ", ".join(SUPPORTED_EXTENSIONS)


def split_path(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split a path into the file (or ``.zarr`` folder) and the path inside it.

    ``'cells.h5:raw'`` gives ``(Path('cells.h5'), 'raw')``, ``'plate.zarr:A/1/0'`` and
    ``'plate.zarr/A/1/0'`` give ``(Path('plate.zarr'), 'A/1/0')`` (an image file inside a
    ``.zarr`` folder, such as ``'x.zarr/a.tif'``, stays a file); other paths give
    ``(Path(path), None)``. An empty inner path (``'cells.h5:'``) counts as none; an
    existing file whose name holds such a colon is that file.
    """
    text = os.fspath(path)
    match = _INNER_PATH.match(text)
    if match and not os.path.isfile(text):  # a file may be named 'run.h5:raw.tif' itself
        inner = match["inner"].strip("/")
        return Path(match["file"]), inner or None
    full = Path(text)
    if full.suffix.lower() not in _FORMATS:
        for parent in full.parents:
            if parent.suffix.lower() == ".zarr":
                inner = full.relative_to(parent).as_posix()
                return parent, inner
    return full, None


def image_format(path: str | os.PathLike[str]) -> str | None:
    """Name of the format of ``path`` from its extension, or ``None`` if unsupported.

    One of ``'tiff'``, ``'png'``, ``'jpeg'``, ``'npy'``, ``'hdf5'``, ``'zarr'``.
    """
    file, _ = split_path(path)
    return _FORMATS.get(file.suffix.lower())


def image_stem(path: str | os.PathLike[str]) -> str:
    """File name without its image extension: ``'a/cell_01.ome.tif'`` gives ``'cell_01'``."""
    file, _ = split_path(path)
    name = file.name
    lower = name.lower()
    for ending in _STEM_ENDINGS:
        if lower.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return file.stem


def is_image_path(path: Path) -> bool:
    """True for an existing, non-hidden image file or ``.zarr`` folder."""
    if path.name.startswith("."):
        return False
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        return False
    if kind == "zarr":
        return path.is_dir()
    return path.is_file()


def _images_in_folder(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        raise InputError(
            f"cannot list folder '{folder}': {error.strerror or error}; check its permissions"
        ) from None
    return [entry for entry in entries if is_image_path(entry)]


def path_text(item: object) -> str:
    """The text of a file, folder or pattern name; anything else (an image array handed to
    a function that reads files, say) is a one-line :class:`InputError`."""
    if not isinstance(item, str | os.PathLike):
        kind = "an array" if hasattr(item, "shape") else f"a {type(item).__name__}"
        raise InputError(
            f"expected a file, folder or pattern name, got {kind}; these functions read "
            "files (for an image in memory use deepscope.load_model(NAME).predict(image), "
            "deepscope.measure or deepscope.count.count_objects)"
        )
    return os.fspath(item)


def split_folder_dataset(folder: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``'train:raw'`` -> ``(Path('train'), 'raw')`` when ``train`` is a folder and
    ``train:raw`` is not: every HDF5/zarr file of the folder is read at that inner path;
    anything else -> ``(Path(folder), None)``."""
    text = path_text(folder)
    base, sep, inner = text.rpartition(":")
    if sep and inner and not Path(text).exists() and Path(base).is_dir():
        return Path(base), inner
    return Path(text), None


def _expand(item: str | os.PathLike[str]) -> list[Path]:
    """The image paths one input of :func:`list_images` stands for."""
    text = path_text(item)
    path = Path(text)
    file, inner = split_path(text)
    if inner is not None and file.exists():
        return [path]
    folder, dataset = split_folder_dataset(text)
    if dataset is not None:  # 'folder:raw': the dataset 'raw' of every HDF5 or Zarr file
        found = [f for f in _images_in_folder(folder) if _INNER_PATH.match(f"{f}:x")]
        if not found:
            raise InputError(
                f"folder '{folder}' holds no HDF5 or Zarr files whose dataset '{dataset}' "
                "could be read; 'FOLDER:DATASET' is for folders of such files"
            )
        return [Path(f"{f}:{dataset}") for f in found]
    if path.is_dir() and path.suffix.lower() != ".zarr":
        found = _images_in_folder(path)
        if not found:
            nested = [d for d in sorted(path.iterdir()) if d.is_dir() and _images_in_folder(d)]
            if nested:  # e.g. the class sub-folders of a classifier's training crops
                raise InputError(
                    f"folder '{path}' holds no image files itself, only in sub-folders "
                    f"({', '.join(d.name for d in nested[:3])}{', ...' if len(nested) > 3 else ''}"
                    f"); pass '{path / '*' / '*'}' to take them all"
                )
            raise InputError(
                f"folder '{path}' contains no image files; supported: {supported_list()}"
            )
        return found
    if path.exists():
        if image_format(path) is None:
            raise InputError(
                f"'{path}' is not a supported image file; supported: {supported_list()}"
            )
        return [path]
    if any(char in text for char in _GLOB_CHARS):
        matches = sorted(glob.glob(text, recursive=True))
        found = [Path(match) for match in matches if is_image_path(Path(match))]
        if not found:
            raise InputError(
                f"pattern {text!r} matches no image files; check the pattern "
                f"(supported: {supported_list()})"
            )
        return found
    raise InputError(
        f"input '{text}' does not exist; pass an image file, a folder of images or a glob "
        "pattern such as 'images/*.tif'"
    )


def list_images(inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    """Expand files, folders and glob patterns into a list of image paths.

    Parameters
    ----------
    inputs : sequence of str or Path
        Each item is an image file (also ``'file.h5:dataset'``), a folder (its image files,
        sorted by name, not recursive; a ``.zarr`` folder counts as one image), or a glob
        pattern such as ``'data/*/images/*.tif'`` (``**`` matches sub-folders). A single
        string or path is accepted as well. Hidden files (name starting with ``.``) are
        skipped in folders and patterns.

    Returns
    -------
    list of Path
        The images in input order, each listed once.

    Raises
    ------
    InputError
        If no inputs are given, or an input does not exist, is not a supported image,
        or is a folder or pattern without any image file.

    Examples
    --------
    >>> list_images(["train/images", "extra/*.tif"])  # doctest: +SKIP
    [PosixPath('train/images/a.tif'), PosixPath('train/images/b.tif'), ...]
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if hasattr(inputs, "shape"):  # one image array, not a list of names
        path_text(inputs)
    if len(inputs) == 0:
        raise InputError("no inputs given; pass image files, folders or glob patterns")
    seen: set[str] = set()
    result: list[Path] = []
    for item in inputs:
        for path in _expand(item):
            key = os.path.normcase(os.path.abspath(path))
            if key not in seen:
                seen.add(key)
                result.append(path)
    return result
