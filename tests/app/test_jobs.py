"""Jobs: the SQLite queue, the worker's run of a job, stop / resume, and restarts."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from deepscope.app import create_app
from deepscope.app.jobs import JobStore
from deepscope.app.worker import run_next


@pytest.fixture()
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def training(tiny_settings, **changes) -> dict:
    settings = {k: str(v) if hasattr(v, "parent") else v for k, v in tiny_settings.items()}
    return {"settings": {**settings, **changes}}


def test_one_job_at_a_time_per_device(store):
    first = store.submit("batch", {"n": 1})
    second = store.submit("batch", {"n": 2})
    gpu = store.submit("batch", {"n": 3}, device="cuda")
    assert store.claim_next("cpu").id == first.id
    assert store.claim_next("cpu") is None  # the first one still runs
    assert store.claim_next("cuda").id == gpu.id
    store.finish(first.id, "done", {"ok": True})
    assert store.claim_next("cpu").id == second.id


def test_restart_loses_neither_the_queued_nor_the_running_job(store):
    running = store.submit("train", {"settings": {}})
    queued = store.submit("train", {"settings": {}})
    store.claim_next()
    reopened = JobStore(store.path)  # a new server process on the same file
    assert reopened.recover() == [running.id]
    assert [reopened.get(j.id).status for j in (running, queued)] == ["queued", "queued"]
    assert reopened.get(running.id).attempts == 1  # it resumes from its checkpoint


def test_a_training_job_runs_and_lands_in_the_library(store, tiny_settings, tmp_path):
    job = store.submit("train", training(tiny_settings))
    assert run_next(store, tmp_path / "results") == "done"
    done = store.get(job.id)
    assert done.status == "done" and (tmp_path / "models" / "tiny" / "model.json").is_file()
    stages = {event["stage"] for _, event in store.events(job.id)}
    assert {"load", "train", "epoch", "done"} <= stages


def test_stop_then_resume_goes_on_from_the_checkpoint(store, tiny_settings, tmp_path):
    job = store.submit("train", training(tiny_settings, epochs=3, steps_per_epoch=200))
    runner = threading.Thread(target=run_next, args=(store, tmp_path / "results"))
    runner.start()
    deadline = time.time() + 60
    while not any(e["stage"] == "train" for _, e in store.events(job.id)):
        assert time.time() < deadline, "training did not start"
        time.sleep(0.05)
    store.request_stop(job.id)
    runner.join(timeout=60)
    stopped = store.get(job.id)
    assert stopped.status == "stopped"
    assert (tmp_path / "models" / "tiny" / "checkpoints" / "last.pt").is_file()
    seen = len(store.events(job.id))
    last_step = max(e["done"] for _, e in store.events(job.id) if e["stage"] == "train")

    assert store.requeue(job.id).status == "queued"
    assert run_next(store, tmp_path / "results") == "done"
    after = [e for _, e in store.events(job.id, seen) if e["stage"] == "train"]
    assert after[0]["done"] >= last_step  # resumed, not restarted
    assert store.get(job.id).attempts == 2


def test_a_failing_job_is_recorded_and_the_worker_goes_on(store, tmp_path):
    bad = store.submit("batch", {"model": "no-such-model", "inputs": [str(tmp_path)]})
    assert run_next(store, tmp_path / "results") == "failed"
    assert "no-such-model" in store.get(bad.id).error


def count_plate(client: TestClient, settings, data_root, ranges=()) -> dict:
    """Submit a batch count of the plate folder through the API, run it in this process;
    the job as it ended."""
    params = {"model": "unet-nuclei-fluo", "folder": str(data_root / "plate"), "mode": "count",
              "ranges": list(ranges)}  # fmt: skip
    job = client.post("/api/jobs", json={"kind": "batch", "params": params}).json()
    run_next(JobStore(settings.state_dir / "jobs.sqlite"), settings.state_dir / "results")
    return client.get(f"/api/jobs/{job['id']}").json()


def test_batch_job_of_a_folder(settings, data_root):
    with TestClient(create_app(settings)) as client:
        job = count_plate(client, settings, data_root, ["area=50:"])
        assert job["status"] == "done" and job["result"]["images"] == 2
        summary = client.get(f"/api/results/job-{job['id']}/summary.csv")
        assert summary.status_code == 200 and summary.text.count("\n") == 3
        stream = client.get(f"/api/jobs/{job['id']}/events").text
        assert "event: end" in stream and '"stage": "count"' in stream


def test_a_batch_job_skips_an_unreadable_image_and_names_it(settings, data_root):
    (data_root / "plate" / "broken.tif").write_bytes(b"not a tiff")
    with TestClient(create_app(settings)) as client:
        job = count_plate(client, settings, data_root)
        assert job["status"] == "done"
        assert job["result"]["images"] == 2 and len(job["result"]["skipped"]) == 1
        assert "broken.tif" in job["result"]["skipped"][0]


def test_job_requests_are_checked_before_they_are_queued(client, tiny_settings, tmp_path):
    outside = client.post("/api/jobs", json={"kind": "train", "params": training(tiny_settings)})
    assert outside.status_code == 403  # the training folders are not under the data root
    bad = client.post(
        "/api/jobs",
        json={"kind": "train", "params": {"settings": {"task": "semantic", "epochs": 0}}},
    )
    assert bad.status_code == 400
    assert client.post("/api/jobs", json={"kind": "cook", "params": {}}).status_code == 400
    bogus = client.post("/api/jobs", json={"kind": "train", "params": {"settings": {"task": "x"}}})
    assert bogus.status_code == 400 and "unknown task 'x'" in bogus.text
    batch = {"model": "care-fmd-confocal", "folder": "plate", "mode": "count"}
    restoration = client.post("/api/jobs", json={"kind": "batch", "params": batch})
    assert restoration.status_code == 400 and "does not segment objects" in restoration.text
    misspelt = {"model": "unet-nuclei-fluo", "folder": "plate", "spilt": True}
    typo = client.post("/api/jobs", json={"kind": "batch", "params": misspelt})
    assert typo.status_code == 400 and "unknown job parameter(s) spilt" in typo.text
    assert client.get("/api/jobs").json() == []


def test_stop_and_resume_through_the_api(client):
    # a queued job stops at once and can be put back in the queue
    store_job = client.post(
        "/api/jobs",
        json={"kind": "batch", "params": {"model": "unet-nuclei-fluo", "folder": "plate"}},
    ).json()
    stopped = client.post(f"/api/jobs/{store_job['id']}/stop").json()
    assert stopped["status"] == "stopped"
    assert client.post(f"/api/jobs/{store_job['id']}/resume").json()["status"] == "queued"
    assert client.post(f"/api/jobs/{store_job['id']}/resume").status_code == 409


def test_a_restarted_server_queues_the_job_that_was_running(settings):
    store = JobStore(settings.state_dir / "jobs.sqlite")
    job = store.submit("batch", {"model": "unet-nuclei-fluo", "inputs": ["x"]})
    store.claim_next()  # the old server died while running it
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/jobs/{job.id}").json()["status"] == "queued"


def test_the_worker_process_runs_queued_jobs(settings, data_root):
    with TestClient(create_app(settings.model_copy(update={"workers": True}))) as client:
        job = client.post(
            "/api/jobs",
            json={"kind": "batch", "params": {"model": "unet-nuclei-fluo", "folder": "plate"}},
        ).json()
        deadline = time.time() + 120
        while (status := client.get(f"/api/jobs/{job['id']}").json()["status"]) != "done":
            assert status in ("queued", "running") and time.time() < deadline, status
            time.sleep(0.5)
        files = client.get(f"/api/jobs/{job['id']}").json()["result"]["files"]
        assert "a_labels.tif" in files and "b_overlay.png" in files


def test_quality_check_jobs(settings, data_root, nuclei_folders):
    synthetic = nuclei_folders["val_images"].parents[1]
    both = settings.model_copy(update={"data_roots": [data_root, synthetic]})
    store = JobStore(both.state_dir / "jobs.sqlite")
    with TestClient(create_app(both)) as client:
        seg = client.post(
            "/api/jobs",
            json={
                "kind": "evaluate",
                "params": {
                    "model": "unet-nuclei-fluo",
                    "images": str(nuclei_folders["val_images"]),
                    "truth": str(nuclei_folders["val_masks"]),
                },
            },
        ).json()
        restore = client.post(
            "/api/jobs",
            json={
                "kind": "evaluate",
                "params": {
                    "model": "n2v-fmd-confocal",
                    "images": str(data_root / "plate"),
                    "truth": str(data_root / "plate"),
                },
            },
        ).json()
        assert run_next(store, both.state_dir / "results") == "done"
        assert run_next(store, both.state_dir / "results") == "done"
        metrics = client.get(f"/api/jobs/{seg['id']}").json()["result"]["metrics"]
        assert metrics["n_images"] == 2 and 0 <= metrics["ap@0.5"] <= 1
        report = client.get(f"/api/results/job-{restore['id']}/report.html")
        assert report.status_code == 200 and "<html" in report.text.lower()
        outside = client.post(
            "/api/jobs",
            json={"kind": "evaluate", "params": {"model": "unet-nuclei-fluo", "images": "/etc"}},
        )
        assert outside.status_code == 403


def test_an_error_naming_a_file_that_is_not_utf8_is_stored_and_the_queue_goes_on(store):
    job = store.submit("batch", {"n": 1})
    store.claim_next("cpu")
    store.finish(job.id, "failed", error="cannot read 'bad\udcffname.tif'")
    assert store.get(job.id).error == "cannot read 'bad\\udcffname.tif'"
    assert store.claim_next("cpu") is None  # nothing stuck as running: the queue is free


def test_a_training_is_refused_a_name_already_in_my_models_or_in_the_queue(
    settings, tiny_settings, nuclei_folders
):
    synthetic = nuclei_folders["val_images"].parents[1]
    both = settings.model_copy(update={"data_roots": [synthetic]})
    store = JobStore(both.state_dir / "jobs.sqlite")
    params = training(tiny_settings, name="nuclei")
    params["settings"].pop("out")
    with TestClient(create_app(both)) as client:
        first = client.post("/api/jobs", json={"kind": "train", "params": params})
        assert first.status_code == 200, first.text
        queued_twice = client.post("/api/jobs", json={"kind": "train", "params": params})
        assert queued_twice.status_code == 400 and "a training named 'nuclei'" in queued_twice.text
        assert run_next(store, both.state_dir / "results") == "done"
        again = client.post("/api/jobs", json={"kind": "train", "params": params})
        assert again.status_code == 400 and "already holds a model" in again.text
        clash = store.submit("train", params)  # past the form: fails in the queue
        assert run_next(store, both.state_dir / "results") == "failed"
        error = client.get(f"/api/jobs/{clash.id}").json()["error"]
        assert "<My models>/nuclei already holds" in error and str(both.state_dir) not in error


def test_a_batch_job_in_which_every_image_is_skipped_fails_and_says_why(settings, data_root):
    with TestClient(create_app(settings)) as client:
        job = count_plate(client, settings, data_root, ["area_um2=1:100"])
        assert job["status"] == "failed"
        assert job["error"].startswith("no image could be processed; a.tif:")
        assert "1 more" in job["error"]
        summary = settings.state_dir / "results" / f"job-{job['id']}" / "summary.csv"
        assert summary.read_text().startswith("image,count")


def test_a_classifier_quality_check_reads_the_classes_from_the_sub_folders(settings, tmp_path):
    import imageio.v3 as iio
    import numpy as np

    crops = tmp_path / "crops"
    rng = np.random.default_rng(0)
    for phase in ("inter", "meta"):
        (crops / phase).mkdir(parents=True)
        for i in range(2):
            iio.imwrite(crops / phase / f"{i}.png", rng.integers(0, 255, (64, 64, 3), np.uint8))
    roots = settings.model_copy(update={"data_roots": [crops]})
    store = JobStore(roots.state_dir / "jobs.sqlite")
    with TestClient(create_app(roots)) as client:
        job = client.post(
            "/api/jobs",
            json={"kind": "evaluate",
                  "params": {"model": "mitosis-phase-classifier", "images": str(crops)}},
        ).json()  # fmt: skip
        assert run_next(store, roots.state_dir / "results") == "done"
        metrics = client.get(f"/api/jobs/{job['id']}").json()["result"]["metrics"]
        assert metrics["n_images"] == 4 and 0 <= metrics["accuracy"] <= 1


def test_a_batch_takes_a_channel_to_segment_and_refuses_one_that_is_not_a_number(
    settings, data_root
):
    with TestClient(create_app(settings)) as client:
        params = {"model": "unet-nuclei-fluo", "folder": str(data_root / "plate"),
                  "mode": "count", "channel": 0}  # fmt: skip
        job = client.post("/api/jobs", json={"kind": "batch", "params": params})
        assert job.status_code == 200, job.text
        run_next(JobStore(settings.state_dir / "jobs.sqlite"), settings.state_dir / "results")
        assert client.get(f"/api/jobs/{job.json()['id']}").json()["status"] == "done"
        bad = client.post("/api/jobs", json={"kind": "batch", "params": {**params, "channel": "x"}})
        assert bad.status_code == 400 and "params.channel must be a channel number" in bad.text
