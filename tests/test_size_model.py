"""The size model: object diameters, rescaling images to a model's training diameter
(``predict(..., diameter=...)``, ``--diameter auto|PIXELS``), and size estimation on
rescaled images."""

import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from deepscope.errors import InputError, ModelError
from deepscope.measure import equivalent_diameters, median_diameter
from deepscope.predict.rescale import check_diameter, parse_diameter, predict_at_diameter
from deepscope.spec import read_spec
from deepscope.tasks import Result


def discs(shape, centres, diameter):
    """A label image of discs (labels 1..N) of ``diameter`` pixels at ``centres``."""
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for i, (y, x) in enumerate(centres, start=1):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= (diameter / 2) ** 2] = i
    return labels


# 12 discs of diameter 12 on a 96 x 128 grid
CENTRES = [(16 + 32 * r, 16 + 32 * c) for r in range(3) for c in range(4)]
SMALL = discs((96, 128), CENTRES, 12)
# the same picture at twice the magnification: discs of diameter 24
LARGE = discs((192, 256), [(2 * y, 2 * x) for y, x in CENTRES], 24)


class BrightObjects:
    """A stand-in for a network + post-processing: objects are the connected bright
    regions of channel 0. Records the shapes it was given."""

    def __init__(self):
        self.shapes = []

    def __call__(self, image):
        self.shapes.append(image.shape)
        labels, _ = ndi.label(image[0] > 0.5)
        return Result(labels=labels.astype(np.int32), probabilities=image[0].copy())


# -- diameters -----------------------------------------------------------------------------
def test_the_equivalent_diameter_of_a_disc_is_its_diameter():
    assert median_diameter(SMALL) == pytest.approx(12, rel=0.05)
    assert median_diameter(LARGE) == pytest.approx(24, rel=0.05)
    assert len(equivalent_diameters(SMALL)) == len(CENTRES)


def test_diameters_of_objects_with_ids_from_other_tools_of_any_size():
    labels = SMALL.astype(np.uint64) * (2**40 + 3)  # ids above 2**40: a bincount of 8 TiB
    np.testing.assert_allclose(np.sort(equivalent_diameters(labels)),
                               np.sort(equivalent_diameters(SMALL)))  # fmt: skip


def test_diameters_pool_the_objects_of_several_images_and_of_3d_balls():
    # 12 discs of 12 and 1 of 40: the median is 12
    assert median_diameter([SMALL, discs((64, 64), [(32, 32)], 40)]) == pytest.approx(12, rel=0.05)
    zz, yy, xx = np.indices((40, 40, 40))
    ball = ((zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 10**2).astype(np.uint16)
    assert median_diameter(ball, ndim=3) == pytest.approx(20, rel=0.05)


def test_no_objects_have_no_diameter():
    assert median_diameter(np.zeros((32, 32), np.int32)) is None
    assert median_diameter([]) is None


# -- the diameter a user gives --------------------------------------------------------------
@pytest.mark.parametrize(
    "value, parsed", [(None, None), ("auto", "auto"), ("24", 24.0), (7.5, 7.5)]
)
def test_a_diameter_is_auto_or_a_positive_number(value, parsed):
    assert parse_diameter(value) == parsed


@pytest.mark.parametrize("value", ["big", "0", -3, float("nan"), True])
def test_other_diameters_are_input_errors(value):
    with pytest.raises(InputError, match="diameter must be 'auto' or a positive number"):
        parse_diameter(value)


def test_a_model_without_a_training_diameter_or_a_zoom_out_of_range_is_refused():
    with pytest.raises(ModelError, match="records no training object diameter"):
        check_diameter("auto", None)
    with pytest.raises(InputError, match=r"zooms by 0\.1 to 10"):
        check_diameter(500, object_diameter=12)
    assert check_diameter(None, None) is None


# -- rescaling with a stand-in predictor -------------------------------------------------------
def test_auto_estimates_the_size_on_a_rescaled_image_and_returns_the_original_shape():
    predict = BrightObjects()
    image = (LARGE[None] > 0).astype(np.float32)  # (C, Y, X): twice the training size
    result = predict_at_diameter(predict, image, 12.0, "auto")
    assert result.diameter == pytest.approx(24, rel=0.15)
    assert result.scale == pytest.approx(0.5, rel=0.15)
    assert result.labels.shape == LARGE.shape and result.probabilities.shape == LARGE.shape
    assert result.labels.max() == len(CENTRES) == len(np.unique(result.labels)) - 1
    # a first pass at scale 1, then one at about half the size, which agrees: done
    assert predict.shapes[0] == (1, 192, 256) and len(predict.shapes) == 2
    assert predict.shapes[1] == pytest.approx((1, 96, 128), abs=12)


def test_a_given_diameter_rescales_once_and_gives_the_same_objects():
    predict = BrightObjects()
    image = (LARGE[None] > 0).astype(np.float32)
    fixed = predict_at_diameter(predict, image, 12.0, 24)
    auto = predict_at_diameter(BrightObjects(), image, 12.0, "auto")
    assert predict.shapes == [(1, 96, 128)]
    assert fixed.diameter == 24 and fixed.scale == 0.5
    assert fixed.labels.shape == LARGE.shape and fixed.labels.max() == len(CENTRES)
    assert np.mean((fixed.labels > 0) == (LARGE > 0)) > 0.97
    assert auto.labels.max() == fixed.labels.max()
    assert np.mean((auto.labels > 0) == (fixed.labels > 0)) > 0.97


def test_auto_keeps_the_first_pass_when_it_finds_no_objects():
    predict = BrightObjects()
    result = predict_at_diameter(predict, np.zeros((1, 64, 64), np.float32), 12.0, "auto")
    assert len(predict.shapes) == 1 and result.scale == 1.0 and result.diameter is None
    assert result.labels.max() == 0


def test_without_a_diameter_the_image_is_predicted_as_it_is():
    predict = BrightObjects()
    result = predict_at_diameter(predict, (SMALL[None] > 0).astype(np.float32), None, None)
    assert predict.shapes == [(1, 96, 128)] and result.scale == 1.0 and result.diameter is None


def test_3d_images_are_zoomed_on_every_spatial_axis():
    zz, yy, xx = np.indices((24, 48, 48))
    balls = ((zz - 12) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2 <= 8**2).astype(np.float32)
    predict = BrightObjects()
    result = predict_at_diameter(predict, balls[None], 8.0, "auto")
    assert predict.shapes[-1] == pytest.approx((1, 12, 24, 24), abs=2)
    assert result.labels.shape == balls.shape and result.labels.max() == 1
    assert result.diameter == pytest.approx(16, rel=0.15)


# -- model packages and training ---------------------------------------------------------------
def test_packages_without_a_training_diameter_still_load():
    from deepscope.zoo.registry import resolve_model

    folder, _ = resolve_model("mitosis-phase-classifier")
    assert read_spec(folder).object_diameter is None
    folder, _ = resolve_model("flows-nuclei-fluo")
    assert read_spec(folder).object_diameter == pytest.approx(19.8, abs=0.1)


def test_training_records_the_median_diameter_of_the_training_objects():
    from deepscope.tasks import get_task
    from deepscope.train.dataset import Sample
    from deepscope.train.trainer import training_diameter

    def sample(truth):
        return Sample("s", np.zeros((1, *truth.shape), np.float32), truth, truth, np.zeros(0))

    samples = [sample(SMALL), sample(LARGE)]  # 12 discs of 12 and 12 of 24
    assert training_diameter(get_task("flows"), samples, 2) == pytest.approx(18, rel=0.1)
    assert training_diameter(get_task("semantic", {"instances": False}), samples, 2) is None
    assert training_diameter(get_task("care"), samples, 2) is None


# -- a real model on a real image -----------------------------------------------------------
@pytest.fixture(scope="module")
def flows_model():
    from deepscope import load_model

    return load_model("flows-nuclei-fluo")


@pytest.fixture(scope="module")
def nuclei_crop(shared_data):
    """A 192 x 192 crop of a DSB2018 validation image and its masks."""
    from deepscope.io import read_image

    folder = shared_data / "dsb2018" / "fluorescence" / "val"
    name = "0e5edb072788c7b1.tif"
    image = read_image(folder / "images" / name).data[:192, :192].astype(np.float32)
    truth = read_image(folder / "masks" / name).data[:192, :192].astype(np.int32)
    return image, truth


def test_auto_finds_the_size_of_nuclei_at_twice_the_magnification(flows_model, nuclei_crop):
    from deepscope.metrics import evaluate_instances

    image, truth = (ndi.zoom(a, 2, order=o) for a, o in zip(nuclei_crop, (1, 0), strict=True))
    result = flows_model.predict(image, diameter="auto")
    assert result.labels.shape == image.shape
    assert result.diameter == pytest.approx(median_diameter(truth), rel=0.2)
    assert result.scale < 0.8  # shrunk towards the training diameter
    assert evaluate_instances([(truth, result.labels)]).to_dict()["ap@0.5"] >= 0.85


def test_a_model_without_a_training_diameter_says_so(flows_model):
    old = flows_model.spec.model_copy(update={"object_diameter": None})
    model = type(flows_model).__new__(type(flows_model))
    model.__dict__.update(flows_model.__dict__, spec=old)
    with pytest.raises(ModelError, match="records no training object diameter"):
        model.predict(np.zeros((32, 32), np.float32), diameter=20)


def test_evaluate_and_count_take_a_diameter(flows_model, nuclei_crop, tmp_path):
    from deepscope.api import count_files, evaluate
    from deepscope.io import write_image
    from deepscope.metrics import evaluate_instances

    image, truth = (ndi.zoom(a, 2, order=o) for a, o in zip(nuclei_crop, (1, 0), strict=True))
    for kind, array in (("images", image), ("masks", truth)):
        write_image(tmp_path / kind / "crop.tif", array)
    sized = evaluate(flows_model, tmp_path / "images", tmp_path / "masks", diameter="auto")
    by_hand = flows_model.predict(image, diameter="auto").labels
    assert sized["ap@0.5"] == evaluate_instances([(truth, by_hand)]).to_dict()["ap@0.5"]
    assert sized["ap@0.5"] >= 0.85
    with pytest.raises(InputError, match="counting --labels takes none"):
        count_files(
            None, [tmp_path / "images"], tmp_path / "n", labels=tmp_path / "masks", diameter=30
        )


# -- the command line -----------------------------------------------------------------------------
def test_predict_with_diameter_auto_on_the_command_line(nuclei_crop, tmp_path):
    from typer.testing import CliRunner

    from deepscope.cli.main import app
    from deepscope.io import read_image, write_image

    image = ndi.zoom(nuclei_crop[0][:128, :128], 1.5, order=1)
    write_image(tmp_path / "crop.tif", image.astype(np.float32))
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app,
        [
            "predict",
            "flows-nuclei-fluo",
            str(tmp_path / "crop.tif"),
            "--out",
            str(out),
            "--diameter",
            "auto",
        ],
    )
    assert run.exit_code == 0, run.output
    labels = read_image(out / "crop_labels.tif").data
    assert labels.shape == image.shape and labels.max() > 5


def test_a_bad_diameter_on_the_command_line_is_one_line(monkeypatch, capsys):
    from deepscope.cli.main import main

    argv = ["deepscope", "predict", "flows-nuclei-fluo", "x.tif", "--diameter", "big"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 1
    assert len(lines) == 1 and lines[0].startswith("error: diameter must be 'auto'"), lines
