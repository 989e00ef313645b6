"""Random augmentation of (image, target) training pairs."""

import numpy as np
import pytest

from deepscope.data.augment import Augmentation, augment, random_warp, warp_window

# geometry only: intensities are left exactly as they are
GEOMETRY_ONLY = Augmentation(intensity_scale=(1.0, 1.0), intensity_shift=(0.0, 0.0))


def labelled_image(shape: tuple[int, ...], channels: int = 2, seed: int = 0) -> np.ndarray:
    """Channel-first float image whose first channel holds distinct integers 0..N-1."""
    rng = np.random.default_rng(seed)
    first = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    others = [rng.random(shape, dtype=np.float32) for _ in range(channels - 1)]
    return np.stack([first, *others])


def test_image_and_target_get_the_same_geometric_transform():
    image = labelled_image((6, 6))
    target = image[0].astype(np.int64)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(64):
        out_image, out_target = augment(image, target, GEOMETRY_ONLY, rng)
        np.testing.assert_array_equal(out_image[0], out_target)
        seen.add(out_target.tobytes())
    # flips of Y and X and four rotations reach all 8 symmetries of the square
    assert len(seen) == 8


def test_all_image_channels_move_together():
    image = labelled_image((6, 6), channels=3)
    rng = np.random.default_rng(2)
    # each pixel's channel values must stay together: find where each first-channel value went
    for _ in range(16):
        out, _ = augment(image, image[0].astype(np.int64), GEOMETRY_ONLY, rng)
        where = {int(v): idx for idx, v in np.ndenumerate(out[0])}
        for idx, v in np.ndenumerate(image[0]):
            np.testing.assert_array_equal(
                out[(slice(None), *where[int(v)])], image[(slice(None), *idx)]
            )


def test_target_with_a_channel_axis_stays_aligned():
    image = labelled_image((6, 6))
    target = image[:1].astype(np.int64)  # (1, Y, X)
    rng = np.random.default_rng(3)
    for _ in range(32):
        out_image, out_target = augment(image, target, GEOMETRY_ONLY, rng)
        assert out_target.shape == (1, 6, 6)
        np.testing.assert_array_equal(out_image[0], out_target[0])


def test_alignment_survives_intensity_changes():
    image = labelled_image((6, 6))
    target = image[0].astype(np.int64)
    rng = np.random.default_rng(4)
    for _ in range(32):
        out_image, out_target = augment(image, target, Augmentation(), rng)
        # intensity scaling is positive, so the order of the values is kept
        np.testing.assert_array_equal(
            np.argsort(out_image[0], axis=None), np.argsort(out_target, axis=None)
        )


def test_intensity_changes_only_the_image():
    image = labelled_image((4, 5)) / 20.0
    target = np.arange(20).reshape(4, 5).astype(np.uint16)
    settings = Augmentation(
        flips=False, rotations=False, intensity_scale=(2.0, 2.0), intensity_shift=(0.5, 0.5)
    )
    out_image, out_target = augment(image, target, settings, np.random.default_rng(0))
    np.testing.assert_allclose(out_image, image * 2 + 0.5, rtol=1e-6)
    np.testing.assert_array_equal(out_target, target)
    assert out_target.dtype == np.uint16


def test_gamma_and_noise_change_only_the_image():
    image = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    target = np.arange(16).reshape(4, 4)
    fixed = {
        "flips": False,
        "rotations": False,
        "intensity_scale": (1, 1),
        "intensity_shift": (0, 0),
    }
    squared, t1 = augment(
        image, target, Augmentation(gamma=(2, 2), **fixed), np.random.default_rng(0)
    )
    np.testing.assert_allclose(squared, image**2, rtol=1e-6)
    noisy, t2 = augment(
        image, target, Augmentation(noise_std=0.5, **fixed), np.random.default_rng(0)
    )
    assert not np.allclose(noisy, image)
    np.testing.assert_array_equal(t1, target)
    np.testing.assert_array_equal(t2, target)


def test_shapes_and_dtypes_are_preserved():
    image = labelled_image((8, 8), channels=3).astype(np.float64)
    target = np.zeros((8, 8), np.uint8)
    rng = np.random.default_rng(5)
    for _ in range(8):
        out_image, out_target = augment(image, target, Augmentation(noise_std=0.1), rng)
        assert out_image.shape == (3, 8, 8) and out_image.dtype == np.float32
        assert out_target.shape == (8, 8) and out_target.dtype == np.uint8
        assert out_image.flags.c_contiguous and out_target.flags.c_contiguous


def test_3d_patches_stay_aligned_and_flip_along_z_too():
    image = labelled_image((3, 4, 4))
    target = image[0].astype(np.int64)
    rng = np.random.default_rng(6)
    z_flipped = False
    for _ in range(32):
        out_image, out_target = augment(image, target, GEOMETRY_ONLY, rng)
        assert out_image.shape == (2, 3, 4, 4) and out_target.shape == (3, 4, 4)
        np.testing.assert_array_equal(out_image[0], out_target)
        # the values of the first slice either stay in it or all move to the last one
        first = set(target[0].ravel())
        assert first in (set(out_target[0].ravel()), set(out_target[-1].ravel()))
        z_flipped |= first == set(out_target[-1].ravel())
    assert z_flipped


def test_non_square_patches_are_not_rotated():
    image = labelled_image((4, 6))
    target = image[0].astype(np.int64)
    settings = Augmentation(
        flips=False, rotations=True, intensity_scale=(1, 1), intensity_shift=(0, 0)
    )
    rng = np.random.default_rng(7)
    for _ in range(16):
        out_image, out_target = augment(image, target, settings, rng)
        # not even by 180 degrees, which would keep the shape
        np.testing.assert_array_equal(out_image, image)
        np.testing.assert_array_equal(out_target, target)


def test_no_geometry_when_switched_off():
    image = labelled_image((6, 6))
    settings = Augmentation(
        flips=False, rotations=False, intensity_scale=(1, 1), intensity_shift=(0, 0)
    )
    out_image, _ = augment(image, image[0], settings, np.random.default_rng(8))
    np.testing.assert_array_equal(out_image, image)


def test_same_seed_same_augmentation():
    image = labelled_image((6, 6))
    target = image[0].astype(np.int64)
    a = augment(image, target, Augmentation(noise_std=0.1), np.random.default_rng(9))
    b = augment(image, target, Augmentation(noise_std=0.1), np.random.default_rng(9))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError):
        Augmentation(elastic=True)
    with pytest.raises(ValueError):
        Augmentation(noise_std=-1)


def disc_labels(size: int, radius: float, label: int = 7) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    return np.where(yy**2 + xx**2 <= radius**2, label, 0).astype(np.int32)


def test_zoom_enlarges_objects_and_keeps_labels_and_image_aligned():
    labels = disc_labels(41, 6)
    image = (labels > 0).astype(np.float32)[None]
    settings = Augmentation(scale=(2.0, 2.0))
    out_image, out_labels = random_warp(image, labels, 32, settings, np.random.default_rng(0))
    assert out_image.shape == (1, 32, 32) and out_labels.shape == (32, 32)
    assert set(np.unique(out_labels)) == {0, 7}  # nearest pixel: no new label values
    area = (out_labels > 0).sum()
    assert abs(area - np.pi * 12**2) < 0.08 * np.pi * 12**2  # radius 6 -> 12
    agree = ((out_image[0] > 0.5) == (out_labels > 0)).mean()
    assert agree > 0.98


def test_any_angle_turns_a_bar_and_keeps_its_area():
    labels = np.zeros((64, 64), np.int32)
    labels[30:34, 12:52] = 3  # a horizontal bar, 4 x 40
    settings = Augmentation(any_angle=True)
    rng = np.random.default_rng(2)
    angles = []
    for _ in range(8):
        _, out = random_warp(labels[None].astype(np.float32), labels, 45, settings, rng)
        ys, xs = np.nonzero(out)
        assert abs(ys.size - 160) < 0.15 * 160
        cov = np.cov(xs, ys)
        angles.append(np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])) % 90)
    assert np.ptp(angles) > 20  # the bar's angles differ by more than quarter turns


def test_the_window_covers_every_warped_pixel():
    assert warp_window(128, Augmentation()) == 128
    assert warp_window(128, Augmentation(scale=(0.5, 1.5))) == 256
    assert warp_window(100, Augmentation(any_angle=True)) == 142
    assert warp_window(100, Augmentation(stretch=(1.0, 4.0))) == 283


def test_stretch_elongates_a_disc_and_keeps_its_area():
    labels = disc_labels(61, 8)
    settings = Augmentation(stretch=(2.25, 2.25))
    rng = np.random.default_rng(3)
    directions = []
    for _ in range(6):
        _, out = random_warp(labels[None].astype(np.float32), labels, 48, settings, rng)
        ys, xs = np.nonzero(out)
        assert abs(ys.size - np.pi * 8**2) < 0.1 * np.pi * 8**2
        cov = np.cov(xs, ys)
        spread = np.sqrt(np.linalg.eigvalsh(cov))
        assert 2.0 < spread[1] / spread[0] < 2.5  # radii 8 * 1.5 and 8 / 1.5
        directions.append(np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])))
    assert np.ptp(np.array(directions) % 180) > 20  # not always along one axis


def test_stretch_below_one_is_rejected():
    with pytest.raises(ValueError, match="stretch"):
        Augmentation(stretch=(0.5, 2.0))


@pytest.mark.parametrize("scale", [(2.0, 1.0), (0.0, 1.0), (-1.0, 1.0)])
def test_a_zoom_range_that_is_inverted_or_reaches_zero_is_refused(scale):
    with pytest.raises(ValueError, match=r"scale must be \(a, b\) with 0 < a <= b"):
        Augmentation(scale=scale)
