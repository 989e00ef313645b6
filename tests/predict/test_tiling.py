"""Tests for tiled inference: tile plans, blending windows and tiled prediction."""

import itertools

import numpy as np
import pytest
import torch

from deepscope.errors import ConfigError, InputError, ModelError
from deepscope.predict import EPS, Tile, blend_window, plan_tiles, predict_tiled


def pointwise(batch: np.ndarray) -> np.ndarray:
    """A 'network' without spatial context: every tiling must reproduce it exactly."""
    return batch * 2 + 1


def coverage(shape, tiles: list[Tile]) -> np.ndarray:
    """How many tiles read each pixel."""
    count = np.zeros(shape, dtype=int)
    for t in tiles:
        count[t.window] += 1
    return count


def small_conv_net(in_channels: int, out_channels: int, layers: int = 4):
    """A random conv net with 3x3 convolutions: receptive field 2 * layers + 1 pixels."""
    torch.manual_seed(0)
    modules: list[torch.nn.Module] = []
    width = in_channels
    for i in range(layers):
        last = i == layers - 1
        modules.append(torch.nn.Conv2d(width, out_channels if last else 8, 3, padding=1))
        if not last:
            modules.append(torch.nn.ReLU())
        width = 8
    net = torch.nn.Sequential(*modules).eval()

    def fn(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(batch)).numpy()

    return fn


# --- plan_tiles -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, tile, overlap, divisor",
    [
        ((203, 157), 64, 16, 8),
        ((203, 157), (48, 96), (8, 24), 8),
        ((100, 100), 32, 0, 1),
        ((65, 64), 64, 10, 1),
        ((20, 33, 41), (8, 16, 16), (2, 4, 4), (4, 8, 8)),
    ],
)
def test_plan_covers_image_with_uniform_tiles(shape, tile, overlap, divisor):
    tiles = plan_tiles(shape, tile, overlap, divisor)

    assert coverage(shape, tiles).min() >= 1
    divisors = divisor if isinstance(divisor, tuple) else (divisor,) * len(shape)
    tile_shape = tiles[0].shape
    for t in tiles:
        assert t.shape == tile_shape
        assert all(s % d == 0 for s, d in zip(t.shape, divisors))
        # windows stay inside the image; no padding is needed when the image is large enough
        assert all(0 <= w.start < w.stop <= n for w, n in zip(t.window, shape))
        assert t.pad == ((0, 0),) * len(shape)


def test_plan_neighbours_overlap_and_last_tile_ends_on_border():
    tiles = plan_tiles((203, 64), tile=64, overlap=16)

    starts = [t.window[0].start for t in tiles]
    stops = [t.window[0].stop for t in tiles]
    assert starts == [0, 48, 96, 139]  # the last tile is shifted back...
    assert stops[-1] == 203  # ...to end exactly on the image border
    assert all(b - a <= 64 - 16 for a, b in itertools.pairwise(starts))  # overlap >= 16
    assert [t.borders[0] for t in tiles] == [
        (True, False),
        (False, False),
        (False, False),
        (False, True),
    ]
    assert all(t.borders[1] == (True, True) for t in tiles)


def test_plan_image_smaller_than_tile_is_padded_to_divisor():
    tiles = plan_tiles((50, 37), tile=64, overlap=16, divisor=8)

    assert len(tiles) == 1
    (t,) = tiles
    assert t.shape == (56, 40)  # image size rounded up to a multiple of 8, not 64
    assert t.window == (slice(0, 50), slice(0, 37))
    assert t.pad == ((3, 3), (1, 2))  # reflect padding split before / after
    assert t.crop == (slice(3, 53), slice(1, 38))
    assert t.borders == ((True, True), (True, True))


def test_plan_mixed_axes_small_z_large_yx():
    tiles = plan_tiles((5, 100, 70), tile=(16, 48, 48), overlap=(4, 8, 8), divisor=(1, 16, 16))

    assert {t.shape for t in tiles} == {(5, 48, 48)}
    assert all(t.window[0] == slice(0, 5) and t.pad[0] == (0, 0) for t in tiles)
    assert coverage((5, 100, 70), tiles).min() >= 1


def test_plan_exactly_one_tile():
    (t,) = plan_tiles((64, 64), tile=64, overlap=16, divisor=8)

    assert t.shape == (64, 64)
    assert t.window == (slice(0, 64), slice(0, 64))
    assert t.pad == ((0, 0), (0, 0))


def test_tile_extract_reads_window_and_reflect_pads():
    image = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    (t,) = plan_tiles((5, 6), tile=8, overlap=0, divisor=8)

    patch = t.extract(image)

    assert patch.shape == (2, 8, 8) and patch.dtype == np.float32
    np.testing.assert_array_equal(patch[(slice(None), *t.crop)], image)
    np.testing.assert_array_equal(patch[0, 0], patch[0, 2])  # reflected, not repeated


# --- blend_window -----------------------------------------------------------------------


def test_blend_window_is_one_in_centre_and_small_at_inner_edges():
    w = blend_window((32, 40), overlap=8)

    assert w.dtype == np.float32 and w.shape == (32, 40)
    assert w.min() > 0 and w.max() == 1
    assert w[16, 20] == 1
    assert w[0, 20] == pytest.approx(EPS) and w[16, -1] == pytest.approx(EPS)


def test_blend_window_keeps_image_borders_at_full_weight():
    w = blend_window((32, 32), overlap=8, borders=[(True, False), (False, True)])

    assert np.all(w[0, 8:] == 1)  # top row is on the image border (away from the left ramp)
    assert np.all(w[8:24, -1] == 1)  # so is the right column (away from the bottom ramp)
    assert w[-1, 16] < 1e-3 and w[16, 0] < 1e-3


@pytest.mark.parametrize("overlap, context", [(8, None), (9, None), (16, 2), (16, 0), (1, 0)])
def test_blend_windows_of_neighbours_sum_to_one(overlap, context):
    # Two tiles of size 32 that overlap by exactly `overlap` pixels cross-fade smoothly.
    left = blend_window((32,), overlap, borders=[(True, False)], context=context)
    right = blend_window((32,), overlap, borders=[(False, True)], context=context)

    total = left[32 - overlap :] + right[:overlap]
    np.testing.assert_allclose(total, 1, atol=2 * EPS)


def test_blend_window_context_gets_epsilon_weight():
    ramp = blend_window((40,), overlap=16, borders=[(False, True)], context=5)

    assert np.all(ramp[:5] == np.float32(EPS))
    assert np.all(np.diff(ramp[4:12]) > 0)  # 16 - 2 * 5 = 6 pixel raised-cosine cross-fade
    assert np.all(ramp[11:] == 1)


# --- predict_tiled: exactness -----------------------------------------------------------


@pytest.mark.parametrize(
    "tile, overlap, divisor",
    [(64, 16, 8), (32, 0, 1), ((48, 80), (10, 30), 1), (256, 16, 8), (40, 20, 4), (None, 0, 8)],
)
def test_pointwise_fn_is_reproduced_exactly_2d(tile, overlap, divisor):
    image = np.random.default_rng(0).random((3, 203, 157), dtype=np.float32)

    out = predict_tiled(pointwise, image, n_out=3, tile=tile, overlap=overlap, divisor=divisor)

    assert out.shape == (3, 203, 157) and out.dtype == np.float32
    np.testing.assert_allclose(out, image * 2 + 1, atol=1e-6)


@pytest.mark.parametrize("tile, overlap", [(16, 4), ((8, 32, 24), (2, 8, 6)), (None, 0)])
def test_pointwise_fn_is_reproduced_exactly_3d(tile, overlap):
    image = np.random.default_rng(1).random((2, 19, 45, 37), dtype=np.float32)

    out = predict_tiled(pointwise, image, n_out=2, tile=tile, overlap=overlap, divisor=4)

    assert out.shape == (2, 19, 45, 37)
    np.testing.assert_allclose(out, image * 2 + 1, atol=1e-6)


@pytest.mark.parametrize(
    "tile, overlap, context",
    [
        (48, 10, None),
        (64, 16, None),
        ((40, 72), (12, 20), None),
        (64, 24, 4),  # wider cross-fade: still exact while context >= receptive radius
    ],
)
def test_tiled_conv_net_matches_whole_image_when_overlap_exceeds_receptive_field(
    tile, overlap, context
):
    # Receptive field of 4 stacked 3x3 convolutions: 9 pixels (radius 4).
    fn = small_conv_net(in_channels=2, out_channels=3)
    image = np.random.default_rng(2).standard_normal((2, 151, 133)).astype(np.float32)

    tiled = predict_tiled(
        fn, image, n_out=3, tile=tile, overlap=overlap, batch_size=4, context=context
    )
    whole = fn(image[None])[0]

    radius = 4
    interior = (slice(None), slice(radius, -radius), slice(radius, -radius))
    np.testing.assert_allclose(tiled[interior], whole[interior], atol=1e-5, rtol=0)


def test_tiled_conv_net_differs_when_overlap_is_too_small():
    # Guards the test above: with too little overlap the missing context shows.
    fn = small_conv_net(in_channels=2, out_channels=3)
    image = np.random.default_rng(2).standard_normal((2, 151, 133)).astype(np.float32)

    tiled = predict_tiled(fn, image, n_out=3, tile=48, overlap=2)
    whole = fn(image[None])[0]

    assert np.abs(tiled - whole)[:, 4:-4, 4:-4].max() > 1e-3


def test_whole_image_mode_pads_to_divisor_and_crops_back():
    image = np.random.default_rng(3).random((1, 50, 37), dtype=np.float32)
    seen = []

    def fn(batch):
        seen.append(batch.shape)
        return pointwise(batch)

    out = predict_tiled(fn, image, n_out=1, tile=None, divisor=16)

    assert seen == [(1, 1, 64, 48)]
    np.testing.assert_allclose(out, image * 2 + 1, atol=1e-6)


@pytest.mark.parametrize("tile", [None, 128])
def test_an_image_in_one_window_is_the_network_output_itself(tile):
    image = np.random.default_rng(5).random((2, 50, 37), dtype=np.float32)
    out = predict_tiled(lambda x: np.sin(x) * 3, image, n_out=2, tile=tile, divisor=16)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.sin(image) * 3)  # no blending, no rounding


def test_fn_only_ever_sees_tile_sized_batches():
    image = np.random.default_rng(4).random((1, 300, 250), dtype=np.float32)
    seen = []

    def fn(batch):
        seen.append(batch.shape)
        return np.repeat(batch.mean(axis=1, keepdims=True), 2, axis=1)

    out = predict_tiled(fn, image, n_out=2, tile=64, overlap=16, batch_size=3, out_dtype=np.float16)

    assert out.shape == (2, 300, 250) and out.dtype == np.float16
    assert {shape[1:] for shape in seen} == {(1, 64, 64)}
    assert max(shape[0] for shape in seen) == 3


# --- predict_tiled: batching and progress -----------------------------------------------


def test_batch_size_does_not_change_the_result():
    fn = small_conv_net(in_channels=1, out_channels=2, layers=2)
    image = np.random.default_rng(5).standard_normal((1, 97, 131)).astype(np.float32)

    one = predict_tiled(fn, image, n_out=2, tile=32, overlap=8, batch_size=1)
    five = predict_tiled(fn, image, n_out=2, tile=32, overlap=8, batch_size=5)

    np.testing.assert_allclose(five, one, atol=1e-6)


def test_progress_reports_tiles_done_after_each_batch():
    image = np.zeros((1, 203, 157), dtype=np.float32)
    total = len(plan_tiles((203, 157), 64, 16))
    calls = []

    predict_tiled(
        pointwise, image, 1, tile=64, overlap=16, batch_size=5, progress=lambda *a: calls.append(a)
    )

    assert total == 12
    assert calls == [(5, 12), (10, 12), (12, 12)]


# --- errors -----------------------------------------------------------------------------


def test_tile_not_multiple_of_divisor_is_rejected_with_a_suggestion():
    with pytest.raises(ConfigError, match="use 96 or 104"):
        plan_tiles((200, 200), tile=100, overlap=8, divisor=8)


@pytest.mark.parametrize("tile, overlap", [(32, 32), (32, 40), (32, 17), ((32, 32), (4, 20))])
def test_overlap_too_large_for_tile_is_rejected(tile, overlap):
    with pytest.raises(ConfigError, match="2 \\* overlap"):
        plan_tiles((100, 100), tile=tile, overlap=overlap)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tile": (64, 64, 64)},  # 3 values for a 2D image
        {"tile": 0},
        {"tile": 64.0},
        {"overlap": -1},
        {"divisor": 0},
        {"batch_size": 0},
        {"n_out": 0},
        {"context": 8},  # 2 * context must stay below overlap
    ],
)
def test_bad_settings_raise_config_error(kwargs):
    image = np.zeros((1, 100, 100), dtype=np.float32)
    settings = {"n_out": 1, "tile": 64, "overlap": 16, "divisor": 8, **kwargs}

    with pytest.raises(ConfigError):
        predict_tiled(pointwise, image, **settings)


@pytest.mark.parametrize("shape", [(100, 100), (1, 1, 4, 100, 100), (1, 0, 100)])
def test_image_with_wrong_shape_raises_input_error(shape):
    with pytest.raises(InputError):
        predict_tiled(pointwise, np.zeros(shape, dtype=np.float32), n_out=1, tile=64, overlap=16)


def test_fn_returning_wrong_shape_raises_model_error():
    image = np.zeros((1, 100, 100), dtype=np.float32)

    with pytest.raises(ModelError, match="check n_out"):
        predict_tiled(pointwise, image, n_out=2, tile=64, overlap=16)
