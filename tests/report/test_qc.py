"""The restoration quality-control report: pairing, numbers, one self-contained HTML file,
errors, 3D, a real-data crop and ``deepscope qc``."""

import re

import numpy as np
import pytest

from deepscope.classical.filters import gaussian_denoise
from deepscope.errors import ConfigError, InputError, PairingError
from deepscope.io import read_image, write_image
from deepscope.metrics.restoration import restoration_metrics
from deepscope.report import pair_predictions, qc_report
from deepscope.report import qc as qc_module
from deepscope.report.qc import METRICS, format_metric

from ..cli.test_cli import deepscope


def clean_image(shape, seed):
    """A smooth pattern of bright blobs on a dim gradient, values about 10 to 110."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=float)
    image = 10 + 5 * grid[-1] / shape[-1]
    for _ in range(6):
        centre = rng.uniform(0, shape, size=len(shape))[:, None]
        distance2 = ((grid.reshape(len(shape), -1) - centre) ** 2).sum(0).reshape(shape)
        image += 100 * np.exp(-distance2 / (2 * rng.uniform(3, 6) ** 2))
    return image.astype(np.float32)


def write_set(root, shape=(64, 64), names=("a", "b"), noise=(25.0, 3.0)):
    """gt/<name>.tif, input/<name>.tif (noisy) and pred/<name>_pred.tif (slightly noisy)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for index, name in enumerate(names):
        clean = clean_image(shape, index)
        noisy = (clean + rng.normal(0, noise[0], shape)).astype(np.float32)
        pred = (clean + rng.normal(0, noise[1], shape)).astype(np.float32)
        write_image(root / "gt" / f"{name}.tif", clean)
        write_image(root / "input" / f"{name}.tif", noisy)
        write_image(root / "pred" / f"{name}_pred.tif", pred)
        arrays[name] = {"gt": clean, "input": noisy, "pred": pred}
    return arrays


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("qc")
    arrays = write_set(root)
    # 'deepscope predict' also writes uncertainty maps next to the predictions.
    write_image(root / "pred" / "a_uncertainty.tif", np.ones((64, 64), np.float32))
    return root, arrays


@pytest.fixture(scope="module")
def full_report(tiny):
    root, _ = tiny
    events = []
    out = root / "reports" / "qc.html"
    result = qc_report(
        root / "pred", root / "gt", out, input_dir=root / "input", progress=events.append
    )
    return result, out.read_text(encoding="utf-8"), events


def mean_metrics(images):
    rows = [restoration_metrics(pred, gt) for pred, gt in images]
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def test_pairs_strip_pred_and_skip_other_outputs(tiny):
    root, _ = tiny
    pairs = pair_predictions(root / "pred", root / "gt", root / "input")
    assert [pair.name for pair in pairs] == ["a", "b"]
    assert [pair.pred.name for pair in pairs] == ["a_pred.tif", "b_pred.tif"]
    assert [pair.gt.name for pair in pairs] == ["a.tif", "b.tif"]
    assert [pair.input.name for pair in pairs] == ["a.tif", "b.tif"]


def test_ground_truth_in_hdf5_files_is_given_as_folder_and_dataset(tiny, tmp_path):
    import h5py

    root, arrays = tiny
    for name in ("a", "b"):
        with h5py.File(tmp_path / f"{name}.h5", "w") as handle:
            handle["clean"] = arrays[name]["gt"]
    pairs = pair_predictions(root / "pred", f"{tmp_path}:clean")
    assert [pair.gt.name for pair in pairs] == ["a.h5:clean", "b.h5:clean"]
    np.testing.assert_array_equal(read_image(pairs[0].gt).data, arrays["a"]["gt"])


def test_report_is_one_self_contained_html_file(full_report, tiny):
    result, text, _ = full_report
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "data:image/png;base64," in text
    assert text.count("data:image/png;base64,") == 2  # one picture per image, no model
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    assert result["n_images"] == 2
    leftovers = [p.name for p in (tiny[0] / "reports").iterdir() if p.name != "qc.html"]
    assert leftovers == []


def test_summary_numbers_are_the_means_of_restoration_metrics(full_report, tiny):
    result, text, _ = full_report
    _, arrays = tiny
    sigma = result["gaussian_sigma"]
    expected = {
        "prediction": mean_metrics([(a["pred"], a["gt"]) for a in arrays.values()]),
        "input": mean_metrics([(a["input"], a["gt"]) for a in arrays.values()]),
        "gaussian": mean_metrics(
            [(gaussian_denoise(a["input"], sigma), a["gt"]) for a in arrays.values()]
        ),
    }
    summary = text[text.index("<h2>Summary") : text.index("<h2>Per image")]
    for source, means in expected.items():
        for key, value in means.items():
            assert result[source][key] == pytest.approx(value, rel=1e-9)
            assert f">{format_metric(key, value)}</td>" in summary
    assert f"σ {sigma:g} px" in summary


def test_the_best_gaussian_sigma_is_chosen_on_mean_psnr(full_report, tiny):
    result, _, _ = full_report
    _, arrays = tiny
    chosen = result["gaussian"]["psnr"]
    for sigma in (0.5, 1.0, 2.0, 4.0):
        other = mean_metrics(
            [(gaussian_denoise(a["input"], sigma), a["gt"]) for a in arrays.values()]
        )
        assert chosen >= other["psnr"] - 1e-9


def test_prediction_scores_better_than_input_and_best_is_highlighted(full_report):
    result, text, _ = full_report
    for key, _, higher, _ in METRICS:
        pred, raw = result["prediction"][key], result["input"][key]
        assert pred > raw if higher else pred < raw, key
    psnr = format_metric("psnr", result["prediction"]["psnr"])
    assert f'<td class="best">{psnr}</td>' in text
    assert "beats the best Gaussian filter" in text
    assert "↑" in text and "↓" in text
    assert "nrmse" in text.lower() and "ZeroCostDL4Mic" in text


def test_per_image_rows_and_progress(full_report, tiny):
    result, text, events = full_report
    _, arrays = tiny
    assert [row["image"] for row in result["per_image"]] == ["a", "b"]
    first = restoration_metrics(arrays["a"]["pred"], arrays["a"]["gt"])
    assert result["per_image"][0]["prediction"] == pytest.approx(first)
    per_image = text[text.index("<h2>Per image") : text.index("<h2>Images")]
    assert f"{format_metric('ssim', first['ssim'])}</td>" in per_image
    assert {event.stage for event in events} == {"baseline", "qc"}
    last = events[-1]
    assert last.stage == "qc" and last.done == last.total == 2


def test_without_input_the_baseline_asks_for_it(tiny, tmp_path):
    root, arrays = tiny
    result = qc_report(root / "pred", root / "gt", tmp_path / "qc.html")
    assert result["gaussian"] is None and result["input"] is None
    assert result["prediction"] == pytest.approx(
        mean_metrics([(a["pred"], a["gt"]) for a in arrays.values()])
    )
    text = (tmp_path / "qc.html").read_text(encoding="utf-8")
    assert "--input" in text and "Gaussian" in text
    assert "<th>prediction</th>" in text and "<th>raw input</th>" not in text


def test_pictures_are_capped(tiny, tmp_path, monkeypatch):
    root, _ = tiny
    monkeypatch.setattr(qc_module, "MAX_PANELS", 1)
    qc_report(root / "pred", root / "gt", tmp_path / "qc.html")
    text = (tmp_path / "qc.html").read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 1
    assert "first 1 of 2 images" in text


def test_model_adds_loss_curves_and_validation_metrics(tiny, tmp_path):
    root, _ = tiny
    with pytest.warns(UserWarning, match="not an image restoration one"):
        qc_report(root / "pred", root / "gt", tmp_path / "qc.html", model="unet-nuclei-fluo")
    text = (tmp_path / "qc.html").read_text(encoding="utf-8")
    assert "<h1>Quality-control report: unet-nuclei-fluo (semantic)</h1>" in text
    assert text.count("data:image/png;base64,") == 3  # two images and the loss curves
    assert "loss per epoch" in text and "ap@0.5" in text
    assert "not an image restoration task" in text


def test_a_volume_shows_its_middle_slice(tmp_path):
    arrays = write_set(tmp_path, shape=(12, 40, 40), names=("stack",))
    result = qc_report(
        tmp_path / "pred", tmp_path / "gt", tmp_path / "qc.html", input_dir=tmp_path / "input"
    )
    expected = restoration_metrics(arrays["stack"]["pred"], arrays["stack"]["gt"])
    assert result["prediction"] == pytest.approx(expected)
    assert result["per_image"][0]["shape"] == (12, 40, 40)
    text = (tmp_path / "qc.html").read_text(encoding="utf-8")
    assert "middle z slice 6 of 12" in text


def test_a_prediction_without_ground_truth_is_named(tiny, tmp_path):
    root, _ = tiny
    write_image(tmp_path / "pred" / "a_pred.tif", np.ones((64, 64), np.float32))
    write_image(tmp_path / "pred" / "zebra_pred.tif", np.ones((64, 64), np.float32))
    with pytest.raises(PairingError, match=r"zebra_pred\.tif"):
        qc_report(tmp_path / "pred", root / "gt", tmp_path / "qc.html")
    assert not (tmp_path / "qc.html").exists()


def test_a_prediction_without_input_is_named(tiny, tmp_path):
    root, arrays = tiny
    write_image(tmp_path / "input" / "a.tif", arrays["a"]["input"])
    with pytest.raises(PairingError, match=r"b_pred\.tif"):
        qc_report(root / "pred", root / "gt", tmp_path / "qc.html", input_dir=tmp_path / "input")


@pytest.mark.parametrize("name", ["qc.txt", "qc", "qc.html.tmp"])
def test_the_report_must_be_html(tiny, tmp_path, name):
    root, _ = tiny
    with pytest.raises(ConfigError, match=r"\.html"):
        qc_report(root / "pred", root / "gt", tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_shape_mismatch_and_empty_folders(tiny, tmp_path):
    root, _ = tiny
    write_image(tmp_path / "gt" / "a.tif", np.ones((32, 32), np.float32))
    write_image(tmp_path / "gt" / "b.tif", np.ones((32, 32), np.float32))
    with pytest.raises(InputError, match=r"shape \(64, 64\).*\(32, 32\)"):
        qc_report(root / "pred", tmp_path / "gt", tmp_path / "qc.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"--gt folder .* contains no image files"):
        qc_report(root / "pred", tmp_path / "empty", tmp_path / "qc.html")
    with pytest.raises(InputError, match=r"--pred folder .* does not exist"):
        qc_report(tmp_path / "missing", root / "gt", tmp_path / "qc.html")


def test_a_failed_run_keeps_the_previous_report(tiny, tmp_path, monkeypatch):
    root, _ = tiny
    out = tmp_path / "qc.html"
    out.write_text("previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(qc_module, "_image_figure", broken)
    with pytest.raises(RuntimeError):
        qc_report(root / "pred", root / "gt", out)
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["qc.html"]


def test_real_confocal_crop(shared_data, tmp_path):
    folder = shared_data / "fmd_confocal_bpae_b" / "fov01"
    noisy = read_image(folder / "noisy_00.tif").data[40:168, 320:448]
    gt = read_image(folder / "gt.tif").data[40:168, 320:448]
    write_image(tmp_path / "input" / "fov01.tif", noisy)
    write_image(tmp_path / "gt" / "fov01.tif", gt)
    write_image(tmp_path / "pred" / "fov01_pred.tif", gaussian_denoise(noisy, 1.5))
    result = qc_report(
        tmp_path / "pred", tmp_path / "gt", tmp_path / "qc.html", input_dir=tmp_path / "input"
    )
    assert result["prediction"]["psnr"] > result["input"]["psnr"] + 3
    assert result["prediction"]["ssim"] > result["input"]["ssim"]
    # sigma 1.5 is one of the candidates, so the oracle Gaussian cannot be worse.
    assert result["gaussian"]["psnr"] >= result["prediction"]["psnr"] - 1e-9
    assert (tmp_path / "qc.html").stat().st_size < 2_000_000


def test_cli_writes_the_report(tiny, tmp_path):
    root, _ = tiny
    out = tmp_path / "qc.html"
    run = deepscope(
        "qc", "--pred", root / "pred", "--gt", root / "gt", "--input", root / "input", "--out", out
    )
    assert run.returncode == 0, run.stderr
    assert out.is_file() and "data:image/png;base64," in out.read_text(encoding="utf-8")
    assert "psnr:" in run.stdout and "Gaussian filter" in run.stdout
    assert f"wrote {out}" in run.stdout.replace("\n", "")


def test_cli_error_is_one_line(tiny, tmp_path):
    root, _ = tiny
    run = deepscope("qc", "--pred", root / "pred", "--gt", root / "gt", "--out", tmp_path / "r.pdf")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert "Traceback" not in run.stderr
