"""Richardson-Lucy and negative values: noise around a subtracted background is clipped,
an offset left in the data is refused; Wiener takes any sign."""

import warnings

import numpy as np
import pytest
from scipy import ndimage

from deepscope import deconvolve_files
from deepscope.classical import deconvolve_image, gaussian_psf, richardson_lucy, wiener_deconvolve
from deepscope.errors import InputError
from deepscope.io import write_image

from ..cli.test_cli import deepscope

PSF = gaussian_psf((9, 9), 1.5)


def blurred_cells(background=15.0, noise=1.0, brightness=200.0, seed=0):
    """Blurred boxes as bright as ``brightness`` on a camera background with Gaussian
    noise, ``(48, 48)``."""
    truth = np.zeros((48, 48), np.float32)
    truth[10:16, 12:18] = brightness
    truth[30:34, 28:36] = 0.6 * brightness
    rng = np.random.default_rng(seed)
    blurred = ndimage.convolve(truth, PSF, mode="reflect") + background
    return (blurred + rng.normal(0, noise, truth.shape)).astype(np.float32)


@pytest.mark.parametrize("brightness", [200.0, 10.0])
def test_noise_below_zero_after_background_subtraction_is_clipped(brightness):
    # the background removed exactly: about half the background pixels are slightly
    # negative; with dim cells (10) they go down to a third of the brightest value, but
    # stay within the noise
    image = blurred_cells(brightness=brightness) - 15.0
    assert image.min() < 0 and (image < 0).mean() > 0.3
    restored = richardson_lucy(image, PSF, iterations=10)
    np.testing.assert_allclose(
        restored, richardson_lucy(np.clip(image, 0, None), PSF, iterations=10), rtol=1e-6
    )
    assert restored.min() >= 0


def test_an_offset_left_in_the_data_is_refused_with_what_to_do():
    # an int64 image with 100 subtracted from a background of 15: mostly negative
    image = np.round(blurred_cells()).astype(np.int64) - 100
    assert (image < 0).mean() > 0.9
    with pytest.raises(InputError, match=r"needs intensities >= 0.* subtract a smaller"):
        richardson_lucy(image, PSF)
    with pytest.raises(InputError, match=r"--method wiener"):
        deconvolve_image(image, PSF, "rl")
    # an image without any light at all
    with pytest.raises(InputError, match="needs intensities >= 0"):
        richardson_lucy(-blurred_cells(), PSF)


def test_wiener_takes_the_offset_along_linearly():
    image = blurred_cells()
    offset = 100.0
    shifted = wiener_deconvolve(image - offset, PSF, balance=0.01)
    # the PSF sums to 1: a constant passes the filter divided by 1 + balance
    np.testing.assert_allclose(
        shifted, wiener_deconvolve(image, PSF, balance=0.01) - offset / 1.01, atol=1e-3
    )
    assert deconvolve_image(image - offset, PSF, "wiener").shape == image.shape


def test_the_cli_refuses_an_offset_image_in_one_line(tmp_path):
    path = write_image(tmp_path / "offset.tif", blurred_cells() - 100, "YX")
    run = deepscope("deconvolve", path, "--psf-sigma", "1.5", "--out", tmp_path / "out")
    assert run.returncode == 1
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("error: offset.tif: Richardson-Lucy needs intensities >= 0")
    )
    assert not (tmp_path / "out" / "offset_deconv.tif").exists()


@pytest.mark.parametrize(
    ("data", "axes", "what"),
    [((32, 32, 3), "YXC", "each channel"), ((2, 4, 32, 32), "TZYX", "each time point")],
)
def test_a_colour_image_or_time_series_is_refused_saying_what_to_save(tmp_path, data, axes, what):
    import deepscope

    path = write_image(tmp_path / "multi.tif", np.ones(data, np.float32), axes)
    with pytest.raises(InputError, match=f"one channel and one time point .* save {what}"):
        deepscope.deconvolve_files([path], tmp_path / "out", psf_sigma=1.0)
    assert not (tmp_path / "out" / "multi_deconv.tif").exists()


def test_keep_going_deconvolves_the_good_images_and_names_the_skipped_one(tmp_path):
    folder = tmp_path / "in"
    write_image(folder / "cells.tif", blurred_cells(background=0.0, noise=0.0), "YX")
    write_image(folder / "colour.tif", np.ones((32, 32, 3), np.float32), "YXC")
    run = deepscope("deconvolve", folder, "--out", tmp_path / "out", "--psf-sigma", "1.5",
                    "--iterations", "5", "--keep-going")  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    skips = [line for line in run.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skips) == 1 and "colour.tif" in skips[0]
    assert (tmp_path / "out" / "cells_deconv.tif").is_file()
    assert not (tmp_path / "out" / "colour_deconv.tif").exists()


def test_a_psf_sigma_that_fits_only_some_images_names_the_one_it_does_not_fit(tmp_path):
    flat = write_image(tmp_path / "flat.tif", np.ones((32, 32), np.float32), "YX")
    stack = write_image(tmp_path / "stack.tif", np.ones((4, 32, 32), np.float32), "ZYX")
    with pytest.raises(InputError, match=r"flat.tif: --psf-sigma has 3 values .* 2D"):
        deconvolve_files([stack, flat], tmp_path / "out", psf_sigma="2,1,1")
    assert (tmp_path / "out" / "stack_deconv.tif").exists()


def test_a_volume_without_a_z_step_names_the_option_that_gives_it(tmp_path):
    stack = write_image(tmp_path / "stack.tif", np.ones((4, 32, 32), np.float32), "ZYX")
    with pytest.raises(InputError, match=r"stack.tif: .* give --z-step"):
        deconvolve_files([stack], tmp_path / "out", wavelength_nm=500, na=1.2, pixel_size_um=0.1)


def test_a_stack_without_axes_in_its_file_can_be_called_a_time_series(tmp_path):
    stack = tmp_path / "movie.npy"
    np.save(stack, np.ones((3, 32, 32), np.float32))
    run = deepscope("deconvolve", stack, "--out", tmp_path / "out", "--psf-sigma", "1",
                    "--axes", "TYX")  # fmt: skip
    assert run.returncode == 1 and "save each time point as a file of its own" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_psf_that_cannot_be_used_stops_the_run_before_any_image(tmp_path):
    write_image(tmp_path / "a.tif", np.ones((32, 32), np.float32))
    (tmp_path / "psfs").mkdir()
    skipped = []
    with pytest.raises(InputError, match=r"^PSF '.*psfs' is a folder; give the PSF's image file"):
        deconvolve_files([tmp_path / "a.tif"], tmp_path / "out", psf=tmp_path / "psfs",
                         on_error=lambda p, e: skipped.append(p))  # fmt: skip
    assert not skipped and not (tmp_path / "out").exists()


def test_a_psf_recorded_at_other_pixel_sizes_than_the_image_is_warned_about(tmp_path):
    image = np.random.default_rng(0).random((8, 32, 32)).astype(np.float32)
    write_image(
        tmp_path / "crop.tif", image, "ZYX", pixel_size={"Z": 0.284, "Y": 0.127, "X": 0.127}
    )
    bead = gaussian_psf((7, 7, 7), (2, 1.5, 1.5))
    write_image(tmp_path / "fine.tif", bead, "ZYX", pixel_size={"Z": 0.1, "Y": 0.05, "X": 0.05})
    write_image(tmp_path / "same.tif", bead, "ZYX", pixel_size={"Z": 0.28, "Y": 0.127, "X": 0.127})

    with pytest.warns(UserWarning, match=r"PSF fine\.tif was recorded at 0\.1 x 0\.05 x 0\.05"):
        deconvolve_files(
            [tmp_path / "crop.tif"], tmp_path / "a", psf=tmp_path / "fine.tif", iterations=2
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deconvolve_files(
            [tmp_path / "crop.tif"], tmp_path / "b", psf=tmp_path / "same.tif", iterations=2
        )
