"""A live ``deepscope serve`` and a real Chromium (Debian's package) driven by Playwright.

The tests skip when Chromium or Playwright is missing; ``make test`` installs both.
"""

import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deepscope.app import ServerSettings, create_app
from deepscope.io import read_image, write_image

SAMPLE = Path(__file__).resolve().parents[2] / "src/deepscope/samples/nuclei_fluo.tif"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sample() -> Path:
    """The sample image shipped in the package."""
    return SAMPLE


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Images to analyse and a tiny synthetic training set, under one data root."""
    from deepscope.data.synthetic import synthetic_nuclei

    root = tmp_path_factory.mktemp("data")
    image = read_image(SAMPLE).data
    write_image(root / "plate" / "a.tif", np.ascontiguousarray(image[:256, :256]))
    for split, count, first in (("train", 4, 0), ("val", 2, 100)):
        for i in range(count):
            img, labels = synthetic_nuclei((64, 64), n=5, seed=first + i)
            write_image(root / split / "images" / f"s{i}.tif", (img * 200).astype(np.uint8))
            write_image(root / split / "masks" / f"s{i}.tif", labels.astype(np.uint16))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_root):
    """The app on a free loopback port, with its job worker, until the module ends."""
    import uvicorn

    home = tmp_path_factory.mktemp("home")
    monkey = pytest.MonkeyPatch()
    monkey.setenv("DEEPSCOPE_HOME", str(home))  # the worker process inherits it
    port = _free_port()
    settings = ServerSettings(
        port=port, data_roots=[data_root], state_dir=home / "server", device="cpu"
    )
    config = uvicorn.Config(create_app(settings), port=port, log_level="warning")
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not live.started:
        assert time.time() < deadline, "the server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    live.should_exit = True
    thread.join(timeout=60)
    monkey.undo()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    messages = []
    tab.on("pageerror", lambda err: messages.append(str(err)))
    yield tab
    context.close()
    assert not messages, f"JavaScript errors: {messages}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where page screenshots go: ``DEEPSCOPE_SCREENSHOTS`` (e.g. docs/screenshots) or a
    temporary folder."""
    import os

    folder = os.environ.get("DEEPSCOPE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
