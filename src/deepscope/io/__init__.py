"""Reading, writing, listing and pairing microscopy images.

>>> from deepscope.io import read_image, write_image
>>> image = read_image("cells.tif")  # doctest: +SKIP
>>> image.axes, image.as_axes("CYX").shape  # doctest: +SKIP
('YX', (1, 512, 512))

Formats, read and written: TIFF/OME-TIFF, PNG, JPEG, ``.npy``, HDF5 (``'file.h5:dataset'``)
and Zarr/OME-Zarr. Axes are strings of the letters ``T, C, Z, Y, X``.
"""

from deepscope.io.axes import VALID_AXES, default_axes, transpose_axes, validate_axes
from deepscope.io.image import Image
from deepscope.io.images import read_image, write_image
from deepscope.io.pairs import match_pairs
from deepscope.io.paths import SUPPORTED_EXTENSIONS, image_stem, list_images

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "VALID_AXES",
    "Image",
    "default_axes",
    "image_stem",
    "list_images",
    "match_pairs",
    "read_image",
    "transpose_axes",
    "validate_axes",
    "write_image",
]
