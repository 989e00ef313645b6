"""Whole images through a model: layout, normalisation, tiling and post-processing."""

import numpy as np
import pytest

from deepscope.data.normalize import Normalization
from deepscope.errors import ConfigError, InputError
from deepscope.io import read_image
from deepscope.nets import UNetConfig, build_unet
from deepscope.predict.predictor import Predictor
from deepscope.tasks import get_task
from deepscope.zoo import load_model


@pytest.fixture(scope="module")
def builtin():
    return load_model("unet-nuclei-fluo", device="cpu")


@pytest.fixture(scope="module")
def sample():
    from deepscope.demo import SAMPLE

    return read_image(SAMPLE).data


def test_labels_have_the_image_shape(builtin, sample):
    result = builtin.predict(sample)
    assert result.labels.shape == sample.shape
    assert result.labels.dtype == np.int32
    assert result.probabilities.shape == (3, *sample.shape)
    assert 50 < result.labels.max() < 1000


def test_tiled_and_whole_image_prediction_agree(builtin, sample):
    whole = builtin.predict(sample, tile=None)
    tiled = builtin.predict(sample, tile=256, overlap=96)
    diff = np.abs(whole.probabilities - tiled.probabilities)
    assert np.percentile(diff, 99.9) < 0.03
    from deepscope.metrics import match_counts

    counts = match_counts(whole.labels, tiled.labels, thresholds=(0.5,))[0]
    assert counts.ap > 0.98


@pytest.mark.parametrize("tile", [48, 64, 96])
def test_a_tile_smaller_than_twice_the_overlap_still_covers_the_image(tile):
    care = load_model("care-fmd-confocal", device="cpu", backend="torch")
    image = np.random.default_rng(0).integers(0, 255, (160, 200)).astype(np.uint8)
    tiled = care.predict(image, tile=tile, overlap=48)
    assert tiled.image.shape == image.shape
    assert np.isfinite(tiled.image).all()


@pytest.mark.parametrize("model", ["care-fmd-confocal", "stardist-nuclei-fluo"])
def test_a_tile_smaller_than_the_overlap_is_refused_with_sizes_that_work(model):
    loaded = load_model(model, device="cpu", backend="torch")
    with pytest.raises(ConfigError, match=r"--tile 20 is smaller .* use --tile 48 or more \(96"):
        loaded.predict(np.zeros((128, 128), np.uint8), tile=20, overlap=48)
    with pytest.raises(ConfigError, match=r"the model's default.* or an --overlap below 20"):
        loaded.predict(np.zeros((128, 128), np.uint8), tile=20)


def test_objects_are_not_tiled_without_an_overlap():
    loaded = load_model("stardist-nuclei-fluo", device="cpu", backend="torch")
    with pytest.raises(ConfigError, match="--overlap 0 cuts objects at tile borders"):
        loaded.predict(np.zeros((256, 256), np.uint8), tile=128, overlap=0)  # 180 for 155
    restored = load_model("care-fmd-confocal", device="cpu").predict(
        np.zeros((64, 64), np.uint8), tile=32, overlap=0
    )
    assert restored.image.shape == (64, 64)  # images may (seams are the user's choice)


def test_axes_can_be_given_for_channel_last_input(builtin, sample):
    plain = builtin.predict(sample[:96, :96])
    with_axes = builtin.predict(sample[:96, :96, None], axes="YXC")
    np.testing.assert_array_equal(plain.labels, with_axes.labels)


@pytest.mark.parametrize("axes", ["YXZ", "ZYX", "TYX"])
def test_axes_that_do_not_fit_the_image_are_named_before_anything_else(builtin, axes):
    with pytest.raises(InputError, match=f"2 dimensions but axes '{axes}' has 3 letters"):
        builtin.predict(np.zeros((128, 100), np.uint8), axes)


def test_wrong_channel_count_says_what_the_model_expects(builtin):
    with pytest.raises(InputError, match="expects 1 channel"):
        builtin.predict(np.zeros((64, 64, 3), np.uint8))


def test_empty_and_non_numeric_images_are_refused(builtin):
    with pytest.raises(InputError, match="empty"):
        builtin.predict(np.zeros((0, 64)))
    with pytest.raises(InputError, match="numeric"):
        builtin.predict(np.full((8, 8), "a"))


def test_images_with_nan_or_infinite_values_are_refused(builtin):
    image = np.ones((64, 64), np.float32)
    image[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        builtin.predict(image)
    image[3, 4] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        builtin.predict(image)


def test_a_2d_model_given_a_stack_says_how_to_segment_it(builtin):
    with pytest.raises(InputError, match=r"3D stack .* --slices3d"):
        builtin.predict(np.zeros((5, 64, 64), np.float32))
    with pytest.raises(InputError, match="time series"):
        builtin.predict(np.zeros((5, 64, 64), np.float32), axes="TYX")
    # a stack of one plane is a 2D image
    assert builtin.predict(np.zeros((1, 64, 64), np.float32), axes="ZYX").labels.shape == (64, 64)


def test_a_3d_network_predicts_volumes():
    config = UNetConfig(ndim=3, depth=2, base_filters=2, out_channels=3)
    predictor = Predictor(
        build_unet(config), get_task("semantic"), Normalization(), input_axes="ZYX", device="cpu"
    )
    volume = np.random.default_rng(0).random((12, 40, 36)).astype(np.float32)
    result = predictor.predict(volume, tile=16, overlap=4)
    assert result.labels.shape == volume.shape


def test_flip_averaging_of_a_pointwise_function_changes_nothing():
    from deepscope.predict.predictor import with_flips

    batch = np.random.default_rng(1).random((2, 1, 16, 24)).astype(np.float32)
    np.testing.assert_allclose(
        with_flips(lambda x: 2 * x + 1, np.flip)(batch), 2 * batch + 1, rtol=1e-6
    )


def test_flip_averaging_makes_a_shift_symmetric():
    from deepscope.predict.predictor import with_flips

    batch = np.zeros((1, 1, 5, 5), np.float32)
    batch[0, 0, 2, 2] = 1
    shifted = with_flips(lambda x: np.roll(x, 1, axis=-1), np.flip)(batch)
    assert shifted[0, 0, 2, 1] == shifted[0, 0, 2, 3] == 0.5
