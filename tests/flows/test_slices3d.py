"""3D flows from a 2D flow model run on XY, XZ and YZ slices (Cellpose's 3D mode)."""

import numpy as np
import pytest
import torch

from deepscope.errors import InputError
from deepscope.flows import flow_targets, flows_to_labels
from deepscope.flows.slices import resample_axis, volume_output
from deepscope.metrics import evaluate_instances
from deepscope.tasks import get_task
from deepscope.tasks.flows import FLOW_SCALE

torch.set_num_threads(1)


def balls(shape=(30, 44, 52), objects=((9, 12, 12, 7), (18, 30, 16, 8), (15, 22, 38, 9))):
    """A label volume of balls ``(cz, cy, cx, radius)``, numbered from 1."""
    zz, yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for k, (cz, cy, cx, r) in enumerate(objects, start=1):
        labels[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = k
    return labels


def exact_slice_model(batch: np.ndarray) -> np.ndarray:
    """A perfect 2D flow model for label slices: the exact flow targets of each slice
    (scaled as a network's) and a confident logit."""
    out = np.zeros((batch.shape[0], 3, *batch.shape[2:]), np.float32)
    for i, plane in enumerate(batch[:, 0]):
        labels = np.rint(plane).astype(np.int32)
        out[i, :2] = FLOW_SCALE * flow_targets(labels)
        out[i, 2] = np.where(labels > 0, 8.0, -8.0)
    return out


def test_exact_slice_flows_combine_into_3d_flows_that_rebuild_the_balls():
    truth = balls()
    output = volume_output(exact_slice_model, truth.astype(np.float32), batch_size=5)
    assert output.shape == (4, *truth.shape) and output.dtype == np.float32
    prob = 1 / (1 + np.exp(-output[3]))
    labels = flows_to_labels(prob, output[:3] / FLOW_SCALE)
    report = evaluate_instances([(truth, labels)], thresholds=(0.5, 0.9)).to_dict()
    assert report["ap@0.5"] >= 0.9 and labels.max() == 3
    # the layout is a native 3D flows task's raw output
    task = get_task("flows", {"ndim": 3})
    assert (task.postprocess(output).labels > 0).sum() == (labels > 0).sum()


def test_combined_flows_point_to_the_centre_along_each_axis():
    cz, cy, cx = 11, 17, 23  # off-centre in a volume of three different sides
    truth = balls((24, 34, 44), ((cz, cy, cx, 8),))
    flows = volume_output(exact_slice_model, truth.astype(np.float32))[:3]
    d = 4
    above_z, above_y, above_x = (
        flows[:, cz + d, cy, cx],
        flows[:, cz, cy + d, cx],
        flows[:, cz, cy, cx + d],
    )
    assert above_z[0] < -1 and abs(above_z[1]) < 0.1 and abs(above_z[2]) < 0.1
    assert above_y[1] < -1 and abs(above_y[0]) < 0.1 and abs(above_y[2]) < 0.1
    assert above_x[2] < -1 and abs(above_x[0]) < 0.1 and abs(above_x[1]) < 0.1
    below_z = flows[:, cz - d, cy, cx]
    assert below_z[0] > 1  # and back up from below


def test_anisotropy_stretches_z_for_the_slices_and_returns_the_original_shape():
    seen = []

    def model(batch):
        seen.append(batch.shape)
        return np.zeros((batch.shape[0], 3, *batch.shape[2:]), np.float32)

    volume = np.random.default_rng(0).random((2, 10, 24, 28)).astype(np.float32)  # (C, Z, Y, X)
    out = volume_output(model, volume, anisotropy=2.2, batch_size=64)
    assert out.shape == (4, 10, 24, 28)
    assert seen == [(22, 2, 24, 28), (24, 2, 22, 28), (28, 2, 22, 24)]  # XY, XZ, YZ


def test_resample_axis_is_linear_and_keeps_a_constant():
    ramp = np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    up = resample_axis(ramp, 8, axis=0)
    assert up.shape == (8, 3)
    assert np.allclose(up[:, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    assert np.allclose(resample_axis(up, 4, axis=0), ramp, atol=0.3)
    assert np.allclose(resample_axis(np.full((5, 2), 7.0), 11, axis=0), 7.0)


def test_volume_output_rejects_a_2d_image():
    with pytest.raises(InputError, match="3D"):
        volume_output(exact_slice_model, np.zeros((16, 16), np.float32))


@pytest.fixture(scope="module")
def flows_model():
    from deepscope.zoo import load_model

    return load_model("flows-nuclei-fluo", device="cpu")


def test_a_2d_flows_model_segments_a_volume_crop_from_slices(flows_model, shared_data):
    from deepscope.io import read_image

    volume = read_image(shared_data / "nuclei3d" / "val" / "1137_mini.h5:raw").data
    crop = volume[:32, :64, :64]
    result = flows_model.predict(crop, "ZYX", slices3d=True, anisotropy=2.2, diameter=25)
    assert result.labels.shape == crop.shape and result.labels.dtype == np.int32
    assert result.probabilities.shape == (1, *crop.shape)
    assert result.scale == pytest.approx(19.8 / 25, rel=1e-3)


def test_slices3d_errors_are_clear(flows_model):
    from deepscope.zoo import load_model

    with pytest.raises(InputError, match="needs a 3D volume"):
        flows_model.predict(np.zeros((64, 64), np.float32), slices3d=True)
    with pytest.raises(InputError, match=r"2 or more z slices, got one .* without --slices3d"):
        flows_model.predict(np.zeros((1, 64, 64), np.float32), "ZYX", slices3d=True)
    with pytest.raises(InputError, match="applies to slices3d only"):
        flows_model.predict(np.zeros((8, 64, 64), np.float32), "ZYX", anisotropy=2.0)
    with pytest.raises(InputError, match="positive"):
        flows_model.check_slices3d(-1.0)
    unet = load_model("unet-nuclei-fluo", device="cpu")
    with pytest.raises(InputError, match="2D flows model"):
        unet.predict(np.zeros((8, 64, 64), np.float32), "ZYX", slices3d=True)


def test_cli_predict_and_evaluate_with_slices3d(tmp_path):
    from typer.testing import CliRunner

    from deepscope.cli.main import app
    from deepscope.io import read_image, write_image

    truth = balls((16, 40, 40), ((8, 12, 12, 6), (8, 26, 27, 7)))
    rng = np.random.default_rng(1)
    image = ((truth > 0) * 150 + 20 + rng.normal(0, 5, truth.shape)).clip(0, 255).astype(np.uint8)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_image(tmp_path / "images" / "vol.tif", image, axes="ZYX")
    write_image(tmp_path / "masks" / "vol.tif", truth.astype(np.uint16), axes="ZYX")
    runner = CliRunner()
    common = ["--axes", "ZYX", "--slices3d", "--anisotropy", "1.0", "--device", "cpu"]
    done = runner.invoke(
        app,
        [
            "predict",
            "flows-nuclei-fluo",
            str(tmp_path / "images"),
            "--out",
            str(tmp_path / "out"),
            *common,
        ],
    )
    assert done.exit_code == 0, done.output
    labels = read_image(tmp_path / "out" / "vol_labels.tif")
    assert labels.data.shape == truth.shape and labels.axes == "ZYX"
    metrics = tmp_path / "m.json"
    done = runner.invoke(
        app,
        [
            "evaluate",
            "flows-nuclei-fluo",
            "--images",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--json",
            str(metrics),
            *common,
        ],
    )
    assert done.exit_code == 0, done.output
    import json

    assert json.loads(metrics.read_text())["n_true"] == 2
    done = runner.invoke(
        app, ["predict", "stardist-nuclei-3d", str(tmp_path / "images"), "--slices3d"]
    )
    # the entry point (deepscope.cli.main.main) prints this InputError as one line
    assert isinstance(done.exception, InputError) and "2D flows model" in str(done.exception)
