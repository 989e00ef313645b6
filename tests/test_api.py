"""The public API on small slices of the real DSB2018 nuclei data."""

import shutil

import pytest

import deepscope

VAL_STEMS = ["0280fa8f60f6bcae", "072ff14c1d3245bf", "0acd2c223d300ea5"]  # the first three


@pytest.fixture(scope="module")
def dsb_slice(shared_data, tmp_path_factory):
    """Three validation images and masks of dsb2018/fluorescence, copied to a temp folder."""
    source = shared_data / "dsb2018" / "fluorescence" / "val"
    root = tmp_path_factory.mktemp("dsb")
    for kind in ("images", "masks"):
        (root / kind).mkdir()
        names = sorted(p.name for p in (source / kind).iterdir())
        for stem in VAL_STEMS:
            name = next(n for n in names if n.startswith(stem))
            shutil.copyfile(source / kind / name, root / kind / name)
    return root


def test_builtin_model_segments_real_nuclei(dsb_slice):
    metrics = deepscope.evaluate("unet-nuclei-fluo", dsb_slice / "images", dsb_slice / "masks")
    assert metrics["n_images"] == 3
    assert metrics["ap@0.5"] > 0.6
    assert metrics["ap@0.5"] >= metrics["ap@0.7"] >= metrics["ap@0.9"]


def test_training_runs_on_real_images(dsb_slice, tmp_path):
    folder = deepscope.train(
        task="semantic",
        name="real",
        out=tmp_path,
        images=dsb_slice / "images",
        masks=dsb_slice / "masks",
        val_fraction=0.34,
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        patch_size=64,
        network={"depth": 2, "base_filters": 4},
        threads=1,
    )
    model = deepscope.load_model(folder)
    assert model.spec.training["data"]["n_train"] == 2
