"""Images a model cannot use are refused with one line that says what to do, before any
network runs: values beyond float32, complex numbers, 2D images for a 3D model. Boolean
images are read as 0 and 1."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from deepscope.data.normalize import Normalization
from deepscope.errors import InputError
from deepscope.io import write_image
from deepscope.nets import UNetConfig, build_unet
from deepscope.predict.predictor import Predictor
from deepscope.tasks import get_task


def tiny_predictor(task="semantic", ndim=2, grid=1, out_channels=3):
    """A randomly initialised two-level U-Net: fast, and enough to exercise the checks."""
    config = UNetConfig(
        ndim=ndim, depth=2, base_filters=2, out_channels=out_channels, grid=grid, norm="none"
    )
    axes = "YX" if ndim == 2 else "ZYX"
    return Predictor(
        build_unet(config), get_task(task), Normalization(), input_axes=axes, device="cpu"
    )


def blobs(shape=(32, 32)):
    rng = np.random.default_rng(0)
    image = rng.normal(20, 2, shape)
    image[tuple(slice(n // 4, n // 2) for n in shape)] += 200
    return image


def test_a_boolean_image_is_restored_as_zeros_and_ones():
    restore = tiny_predictor("care", out_channels=1)
    mask = blobs() > 60
    result = restore.predict(mask)
    assert result.image.dtype == np.float32 and np.isfinite(result.image).all()
    expected = restore.predict(mask.astype(np.uint8)).image
    np.testing.assert_allclose(result.image, expected, rtol=1e-6, atol=1e-6)


def test_values_beyond_float32s_range_are_refused_without_a_numpy_warning():
    segment = tiny_predictor()
    image = blobs() * 1e300  # float64: fine in numpy, infinite once a network reads it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"beyond float32's range .* rescale it"):
            segment.predict(image)
    # the largest float32 values themselves are fine
    top = np.full((32, 32), np.finfo(np.float32).max, np.float64)
    top[8:16, 8:16] = 0
    assert segment.predict(top).labels.shape == (32, 32)


def test_values_too_small_for_float32_are_refused_not_segmented_as_empty():
    segment = tiny_predictor()
    with pytest.raises(InputError, match=r"below float32's smallest .* \(multiply it"):
        segment.predict(blobs() * 1e-300)  # float64: all zeros once a network reads it
    assert segment.predict(np.zeros((32, 32))).labels.max() == 0  # an empty image is fine


def test_nan_and_infinity_are_still_refused_in_any_float_type():
    segment = tiny_predictor()
    for dtype in (np.float16, np.float32, np.float64):
        image = blobs().astype(dtype)
        image[3, 4] = np.nan
        with pytest.raises(InputError, match="NaN or infinite"):
            segment.predict(image)
        image[3, 4] = -np.inf
        with pytest.raises(InputError, match="NaN or infinite"):
            segment.predict(image)


def test_complex_images_are_refused():
    with pytest.raises(InputError, match=r"complex values .* real numbers"):
        tiny_predictor().predict(blobs().astype(np.complex64))


def test_a_3d_model_refuses_a_2d_image_and_a_single_slice():
    segment3d = tiny_predictor(ndim=3)
    with pytest.raises(InputError, match=r"works on 3D volumes \(ZYX\) and the image is 2D"):
        segment3d.predict(blobs())
    with pytest.raises(InputError, match=r"single z slice .* or use a 2D model"):
        segment3d.predict(blobs((1, 32, 32)), axes="ZYX")
    # evaluate reads the spatial shape first, to compare it with the mask: same check
    with pytest.raises(InputError, match="3D volumes"):
        segment3d.spatial_shape(blobs())
    # a volume is fine
    assert segment3d.predict(blobs((4, 32, 32))).labels.shape == (4, 32, 32)


def test_a_3d_model_with_an_output_grid_needs_two_planes_of_it():
    segment3d = tiny_predictor(ndim=3, grid=2)
    assert segment3d.min_z == 4
    with pytest.raises(InputError, match=r"3 z slices .* needs at least 4"):
        segment3d.prepare(blobs((3, 32, 32)))
    with pytest.raises(InputError, match="needs at least 4"):
        segment3d.spatial_shape(blobs((3, 32, 32)))
    assert segment3d.prepare(blobs((4, 32, 32))).shape == (1, 4, 32, 32)


def test_a_2d_model_still_says_how_to_segment_a_volume():
    with pytest.raises(InputError, match=r"3D stack .* --slices3d"):
        tiny_predictor().predict(blobs((5, 32, 32)))


def deepscope(*args, home):
    env = {**os.environ, "DEEPSCOPE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "deepscope", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("command", ["predict", "count", "evaluate"])
def test_the_cli_refuses_a_2d_image_for_a_3d_model_in_one_line(command, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    write_image(images / "plane.tif", blobs((64, 64)).astype(np.uint16), "YX")
    write_image(masks / "plane.tif", (blobs((64, 64)) > 60).astype(np.uint16), "YX")
    if command == "evaluate":
        args = ["evaluate", "stardist-nuclei-3d", "--images", images, "--masks", masks]
    else:
        args = [command, "stardist-nuclei-3d", images, "--out", tmp_path / "out"]
    run = deepscope(*args, home=tmp_path / "home")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error:"), run.stderr
    assert "this model works on 3D volumes" in lines[-1], run.stderr
    assert "Traceback" not in run.stderr


def test_a_channels_first_image_read_as_channels_last_is_told_which_axes_to_pass():
    from deepscope.predict.predictor import channel_first_input

    with pytest.raises(InputError, match=r"has 64 \(read as axes YXC.* pass axes 'CYX'"):
        channel_first_input(np.zeros((3, 64, 64), np.float32), None, "YXC", 2, 3)
    assert channel_first_input(np.zeros((3, 64, 50)), "CYX", "YXC", 2, 3).shape == (3, 64, 50)


def test_a_file_whose_planes_were_taken_for_z_is_told_to_call_them_channels():
    config = UNetConfig(ndim=2, depth=2, base_filters=2, in_channels=2, out_channels=3, norm="none")
    two_channels = Predictor(
        build_unet(config), get_task("semantic"), Normalization(), input_axes="CYX", device="cpu"
    )
    planes = blobs((2, 32, 32))  # a TIFF without axes is read as ZYX

    with pytest.raises(InputError, match=r"2 planes are the model's 2 channels, pass axes 'CYX'"):
        two_channels.predict(planes, axes="ZYX")
    last = np.moveaxis(planes, 0, -1)  # (Y, X, 2), read as ZYX without metadata
    with pytest.raises(InputError, match=r"last axis holds the model's 2 channels, .* 'YXC'"):
        two_channels.predict(last, axes="ZYX")
    assert two_channels.predict(planes).labels.shape == (32, 32)
