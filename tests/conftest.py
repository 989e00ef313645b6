"""Fixtures shared by all test folders."""

import os
import shutil
from pathlib import Path

import pytest

# The real data sets live next to the repository: <repo>/../shared/data.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A user-data folder of this test's own that starts with the CPU runtimes the suite
    has measured so far and hands back those it measures: measuring costs a few seconds
    per model (docs/models.md), and what it measures is the same machine's answer."""
    from deepscope.predict.runtime_choice import RUNTIMES_FILE

    suite = Path(os.environ["DEEPSCOPE_HOME"]) / RUNTIMES_FILE
    home = tmp_path / "home"
    home.mkdir()
    if suite.exists():
        shutil.copy(suite, home / RUNTIMES_FILE)
    monkeypatch.setenv("DEEPSCOPE_HOME", str(home))
    yield home
    if (home / RUNTIMES_FILE).exists():
        suite.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / RUNTIMES_FILE, suite)


@pytest.fixture(scope="session", autouse=True)
def private_deepscope_home(tmp_path_factory):
    """The suite keeps its user data (runtimes measured at model load, models trained
    without an ``out``) in a folder of its own, never in the user's."""
    before = os.environ.get("DEEPSCOPE_HOME")
    os.environ["DEEPSCOPE_HOME"] = str(tmp_path_factory.mktemp("deepscope-home"))
    yield
    if before is None:
        del os.environ["DEEPSCOPE_HOME"]
    else:
        os.environ["DEEPSCOPE_HOME"] = before


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real microscopy data sets; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def nuclei_folders(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic nuclei dataset on disk: train and val folders of image/mask TIFFs."""
    import numpy as np

    from deepscope.data.synthetic import synthetic_nuclei
    from deepscope.io import write_image

    root = tmp_path_factory.mktemp("nuclei")
    folders = {}
    for split, count, first_seed in (("train", 6, 0), ("val", 2, 100)):
        for kind in ("images", "masks"):
            folders[f"{split}_{kind}"] = root / split / kind
        for i in range(count):
            image, labels = synthetic_nuclei((64, 64), n=5, seed=first_seed + i)
            write_image(root / split / "images" / f"img{i}.tif", (image * 200).astype(np.uint8))
            write_image(root / split / "masks" / f"img{i}.tif", labels.astype(np.uint16))
    return folders


@pytest.fixture()
def tiny_settings(nuclei_folders, tmp_path) -> dict:
    """Settings for a training run of a few seconds on the synthetic nuclei."""
    return {
        "task": "semantic",
        "name": "tiny",
        "out": tmp_path / "models",
        "images": nuclei_folders["train_images"],
        "masks": nuclei_folders["train_masks"],
        "val_images": nuclei_folders["val_images"],
        "val_masks": nuclei_folders["val_masks"],
        "network": {"depth": 2, "base_filters": 4},
        "patch_size": 32,
        "batch_size": 2,
        "epochs": 2,
        "steps_per_epoch": 3,
        "val_patches": 2,
        "checkpoint_every": 1,
        "threads": 1,
        "device": "cpu",
    }
