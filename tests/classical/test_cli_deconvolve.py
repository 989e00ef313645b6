"""``deepscope deconvolve`` as a user runs it: a deconvolved TIFF per input, one-line errors."""

import numpy as np
import pytest
from scipy import ndimage

from deepscope.classical import gaussian_psf, richardson_lucy
from deepscope.io import read_image, write_image

from ..cli.test_cli import deepscope


@pytest.fixture()
def blurred_tiff(tmp_path):
    truth = np.zeros((24, 32), np.float32)
    truth[8, 10] = truth[15, 20] = 100.0
    psf = gaussian_psf((9, 9), 1.5)
    blurred = ndimage.convolve(truth, psf)
    return write_image(tmp_path / "cells.tif", blurred, "YX", pixel_size={"Y": 0.1, "X": 0.1})


def test_deconvolve_writes_a_tiff_like_the_api(blurred_tiff, tmp_path):
    run = deepscope(
        "deconvolve",
        blurred_tiff,
        "--out",
        tmp_path / "out",
        "--psf-sigma",
        "1.5",
        "--iterations",
        10,
    )
    assert run.returncode == 0, run.stderr
    assert "wrote 1 file(s)" in run.stdout
    written = read_image(tmp_path / "out" / "cells_deconv.tif")
    assert written.axes == "YX" and written.pixel_size == {"Y": 0.1, "X": 0.1}
    assert written.data.dtype == np.float32
    expected = richardson_lucy(
        read_image(blurred_tiff).data, gaussian_psf((13, 13), 1.5), iterations=10
    )
    np.testing.assert_allclose(written.data, expected, rtol=1e-5, atol=1e-5)


def test_deconvolve_with_a_psf_file_and_wiener(blurred_tiff, tmp_path):
    write_image(tmp_path / "bead.tif", gaussian_psf((9, 9), 1.5))
    run = deepscope(
        "deconvolve",
        blurred_tiff,
        "--out",
        tmp_path / "out",
        "--psf",
        tmp_path / "bead.tif",
        "--method",
        "wiener",
    )
    assert run.returncode == 0, run.stderr
    assert read_image(tmp_path / "out" / "cells_deconv.tif").shape == (24, 32)


@pytest.mark.parametrize(
    "options, message",
    [
        ((), "describe the PSF in exactly one way"),
        (("--wavelength", "520", "--na", "1.6", "--pixel-size", "0.1"), "below the refractive"),
        (("--psf-sigma", "1", "--balance", "0.1"), "--balance does not apply to --method rl"),
        (("--psf-sigma", "1", "--method", "wiener", "--iterations", "5"), "Wiener takes --bal"),
    ],
)
def test_bad_options_print_one_line(blurred_tiff, tmp_path, options, message):
    run = deepscope("deconvolve", blurred_tiff, "--out", tmp_path / "out", *options)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_psf_larger_than_the_image_is_a_one_line_error(blurred_tiff, tmp_path):
    write_image(tmp_path / "big.tif", gaussian_psf((31, 31), 3.0))
    run = deepscope("deconvolve", blurred_tiff, "--out", tmp_path, "--psf", tmp_path / "big.tif")
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert (
        lines[0].startswith("error:")
        and "PSF (31, 31) is larger than the image (24, 32)" in lines[0]
    )
