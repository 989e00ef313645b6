"""The server's state folder: one server at a time; uploads, exports and old previews go."""

import os
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from deepscope.app import create_app
from deepscope.app.state import hold_state_dir, remove_old_results
from deepscope.errors import DeepscopeError


def test_a_second_server_on_the_same_state_folder_is_refused(settings):
    with TestClient(create_app(settings)):
        with pytest.raises(DeepscopeError, match="another deepscope server"):
            with TestClient(create_app(settings)):
                pass
    with TestClient(create_app(settings)) as again:  # the first one stopped: free again
        assert again.get("/api/health").status_code == 200


def test_serve_says_in_one_line_that_the_state_folder_is_taken(tmp_path):
    state = tmp_path / "state"
    with hold_state_dir(state):
        run = subprocess.run(
            [sys.executable, "-m", "deepscope", "serve", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DEEPSCOPE_HOME": str(tmp_path / "home")},
        )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().startswith("error: another deepscope server is using")


def test_uploads_are_removed_once_answered_and_exports_once_sent(client, settings, data_root):
    image = (data_root / "plate" / "a.tif").read_bytes()
    answer = client.post(
        "/api/predict",
        data={"model": "unet-nuclei-fluo"},
        files={"file": ("a.tif", image, "image/tiff")},
    )
    assert answer.status_code == 200
    assert client.get(answer.json()["urls"]["overlay"]).status_code == 200  # results stay
    bad = client.post("/api/predict", data={"model": "unet-nuclei-fluo"},
                      files={"file": ("c.tif", b"not a tiff", "image/tiff")})  # fmt: skip
    assert bad.status_code == 400
    uploads = settings.state_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert client.get("/api/models/unet-nuclei-fluo/export").status_code == 200
    results = settings.state_dir / "results"
    assert not [p for p in results.iterdir() if p.name.startswith("export-")]


def test_old_previews_and_exports_are_removed_and_job_results_kept(tmp_path):
    results = tmp_path / "results"
    old_preview = results / ("a" * 32)
    new_preview = results / ("b" * 32)
    old_export = results / ("export-" + "c" * 32)
    old_job = results / "job-7"
    for folder in (old_preview, new_preview, old_export, old_job):
        folder.mkdir(parents=True)
        (folder / "x.png").write_bytes(b"x")
    ten_days_ago = time.time() - 10 * 86400
    for folder in (old_preview, old_export, old_job):
        os.utime(folder, (ten_days_ago, ten_days_ago))
    removed = remove_old_results(results, days=7)
    assert removed == [old_preview.name, old_export.name]
    assert new_preview.is_dir() and old_job.is_dir()
    assert remove_old_results(tmp_path / "nowhere", days=7) == []
