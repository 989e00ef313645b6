"""PSF models and measured PSFs: centred, symmetric, normalised; clear errors otherwise."""

import math
import warnings

import numpy as np
import pytest

from deepscope.classical import (
    check_psf,
    confocal_psf,
    gaussian_psf,
    psf_from_options,
    read_psf,
    widefield_psf,
)
from deepscope.errors import ConfigError, InputError
from deepscope.io import write_image


def second_moment_sigma(psf, axis):
    """Standard deviation of the PSF along one axis, measured from the array."""
    profile = psf.sum(axis=tuple(a for a in range(psf.ndim) if a != axis))
    x = np.arange(len(profile)) - len(profile) // 2
    return math.sqrt(float((profile * x**2).sum()))


@pytest.mark.parametrize(
    "shape, sigma", [((9, 9), 1.5), ((11, 7), (2.0, 1.0)), ((7, 9, 9), (1.5, 1.0, 1.0))]
)
def test_gaussian_psf_sums_to_one_is_centred_and_symmetric(shape, sigma):
    psf = gaussian_psf(shape, sigma)
    assert psf.shape == shape and psf.dtype == np.float32
    assert psf.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.unravel_index(psf.argmax(), shape) == tuple(n // 2 for n in shape)
    for axis in range(psf.ndim):
        np.testing.assert_allclose(psf, np.flip(psf, axis=axis), rtol=1e-6)


def test_gaussian_psf_has_the_sigma_asked_for_along_each_axis():
    psf = gaussian_psf((41, 41, 41), (4.0, 2.0, 1.0))
    assert [second_moment_sigma(psf, a) for a in range(3)] == pytest.approx([4, 2, 1], rel=1e-3)


@pytest.mark.parametrize(
    "shape, sigma, message",
    [
        ((8, 9), 1.0, "odd"),
        ((9,), 1.0, "2 or 3"),
        ((3, 3, 3, 3), 1.0, "2 or 3"),
        ((9, 9), 0.0, "> 0"),
        ((9, 9), (1.0, 1.0, 1.0), "one per axis"),
    ],
)
def test_gaussian_psf_rejects_bad_settings(shape, sigma, message):
    with pytest.raises(ConfigError, match=message):
        gaussian_psf(shape, sigma)


def test_widefield_psf_follows_the_zhang_formulas():
    # lateral sigma = 0.21 * 0.5 um / 1.0 = 0.105 um = 1.05 px at 0.1 um pixels;
    # axial sigma = 0.66 * 0.5 um * 1.33 / 1.0**2 = 0.4389 um = 2.19 px at 0.2 um steps.
    psf = widefield_psf((31, 21, 21), 500, 1.0, 0.1, z_step_um=0.2, refractive_index=1.33)
    assert second_moment_sigma(psf, 0) == pytest.approx(2.1945, rel=1e-3)
    assert second_moment_sigma(psf, 2) == pytest.approx(1.05, rel=1e-3)


def test_confocal_psf_is_narrower_than_widefield_by_sqrt_two():
    wide = widefield_psf((41, 41), 600, 0.8, 0.05)
    conf = confocal_psf((41, 41), 600, 0.8, 0.05)
    ratio = second_moment_sigma(wide, 1) / second_moment_sigma(conf, 1)
    assert ratio == pytest.approx(math.sqrt(2), rel=1e-3)


def test_optical_psf_errors_say_what_is_wrong():
    with pytest.raises(ConfigError, match="z step"):
        widefield_psf((9, 9, 9), 520, 1.2, 0.1)
    with pytest.raises(ConfigError, match="below the refractive index"):
        widefield_psf((9, 9), 520, 1.4, 0.1, refractive_index=1.33)
    with pytest.raises(ConfigError, match="wavelength"):
        confocal_psf((9, 9), -520, 1.2, 0.1)


def test_read_psf_normalises_a_bead_image(tmp_path):
    bead = (gaussian_psf((9, 9), 1.5) * 5000).astype(np.uint16)
    write_image(tmp_path / "bead.tif", bead)
    psf = read_psf(tmp_path / "bead.tif")
    assert psf.dtype == np.float32 and psf.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(psf, bead / bead.sum(), rtol=1e-5)


def test_a_bead_off_the_middle_pixel_is_flagged_since_it_would_shift_the_result(tmp_path):
    bead = (gaussian_psf((15, 15), 1.5) * 5000).astype(np.uint16)
    write_image(tmp_path / "off.tif", np.roll(bead, 4, axis=1))
    with pytest.warns(UserWarning, match=r"centred \(0, 4\) pixels \(along YX\)"):
        read_psf(tmp_path / "off.tif")
    write_image(tmp_path / "centred.tif", bead)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_psf(tmp_path / "centred.tif")


@pytest.mark.parametrize(
    "data, message",
    [
        (np.full((5, 5), -1.0), "negative"),
        (np.zeros((5, 5)), "all zero"),
        (np.ones((2, 3, 5, 5)), "a PSF is one YX or ZYX image"),
    ],
)
def test_read_psf_rejects_unusable_files(tmp_path, data, message):
    write_image(tmp_path / "psf.tif", data.astype(np.float32))
    with pytest.raises(InputError, match=message) as info:
        read_psf(tmp_path / "psf.tif")
    assert "psf.tif" in str(info.value)


def test_check_psf_wants_as_many_axes_as_the_image():
    with pytest.raises(InputError, match="image is 3D"):
        check_psf(gaussian_psf((5, 5), 1.0), ndim=3)


def test_psf_from_a_sigma_text_fits_the_image():
    psf = psf_from_options((20, 64, 64), sigma="2,1.5,1.5")
    # 2 * ceil(4 * sigma) + 1 pixels per axis, at most the image size
    assert psf.shape == (17, 13, 13)
    assert psf_from_options((9, 64), sigma=3).shape == (9, 25)


def test_psf_from_optics_takes_the_pixel_size_recorded_in_the_file():
    psf = psf_from_options(
        (64, 64), wavelength_nm=500, na=1.0, recorded_pixel_size={"Y": 0.1, "X": 0.1}
    )
    np.testing.assert_allclose(psf, widefield_psf(psf.shape, 500, 1.0, 0.1))
    confocal = psf_from_options(
        (64, 64), wavelength_nm=500, na=1.0, pixel_size_um=0.1, confocal=True
    )
    assert confocal.max() > psf.max()


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "exactly one way"),
        ({"sigma": 1.0, "wavelength_nm": 500, "na": 1.0}, "got a PSF sigma and a wavelength"),
        ({"wavelength_nm": 500, "na": 1.0}, "missing: pixel size"),
        ({"sigma": "2,x"}, "numbers separated by commas"),
    ],
)
def test_psf_from_options_explains_what_is_missing(options, message):
    with pytest.raises(ConfigError, match=message):
        psf_from_options((32, 32), **options)


def test_optics_options_beside_a_sigma_or_file_are_refused_not_ignored():
    from deepscope.classical import psf_from_options

    with pytest.raises(ConfigError, match=r"--confocal describes the optics .* leave it out"):
        psf_from_options((32, 32), sigma=1.0, confocal=True)
    with pytest.raises(ConfigError, match="--refractive-index and --z-step describe"):
        psf_from_options((8, 32, 32), sigma=1.0, refractive_index=1.518, z_step_um=0.2)


def test_a_psf_file_with_colour_channels_is_refused(tmp_path):
    path = write_image(tmp_path / "rgb.tif", np.ones((9, 9, 3), np.float32), "YXC")
    with pytest.raises(InputError, match=r"axes YXC .* save one channel"):
        read_psf(path)
