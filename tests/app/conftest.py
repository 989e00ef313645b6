"""A web app per test, with its own state folder, library and data root."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from deepscope.app import ServerSettings, create_app
from deepscope.io import write_image

SAMPLE = Path(__file__).resolve().parents[2] / "src/deepscope/samples/nuclei_fluo.tif"


@pytest.fixture()
def data_root(tmp_path) -> Path:
    """A data root with two small nuclei images (crops of the shipped sample)."""
    from deepscope.io import read_image

    root = tmp_path / "data"
    image = read_image(SAMPLE).data
    write_image(root / "plate" / "a.tif", np.ascontiguousarray(image[:256, :256]))
    write_image(root / "plate" / "b.tif", np.ascontiguousarray(image[200:456, 300:556]))
    return root


@pytest.fixture()
def settings(tmp_path, data_root, home) -> ServerSettings:
    return ServerSettings(
        data_roots=[data_root], state_dir=tmp_path / "state", workers=False, device="cpu"
    )


@pytest.fixture()
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c
