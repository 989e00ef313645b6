"""Run queued jobs: one worker process per device takes jobs from the SQLite queue.

A job reports its progress as events in the queue (at most one per EVENT_INTERVAL for
steps). A stop request is seen at the next progress report (every training step, every
image) and raised as ``KeyboardInterrupt``, which the trainer turns into a checkpoint:
stopped and interrupted trainings resume exactly where they were.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from deepscope.app.jobs import Job, JobStore
from deepscope.errors import DeepscopeError, InputError
from deepscope.progress import Progress
from deepscope.train.trainer import TrainingInterrupted

#: step events are recorded at most this often (seconds); other events always
EVENT_INTERVAL = 0.5


class JobProgress:
    """A progress callback that records events in the queue and raises
    ``KeyboardInterrupt`` once the job is asked to stop."""

    def __init__(self, store: JobStore, job_id: int) -> None:
        self.store = store
        self.job_id = job_id
        self._last = 0.0

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        frequent = event.stage in ("train", "predict", "count") and event.done < event.total
        if frequent and now - self._last < EVENT_INTERVAL:
            self._stop_if_asked()  # at every step, not only when an event is recorded
            return
        self._last = now
        self.store.add_event(
            self.job_id,
            {
                "stage": event.stage,
                "done": event.done,
                "total": event.total,
                "message": event.message,
                "metrics": {k: float(v) for k, v in event.metrics.items()},
                "time": time.time(),
            },
        )
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self.store.stop_requested(self.job_id):
            raise KeyboardInterrupt


def _train(job: Job, progress: JobProgress, _results: Path, device: str) -> dict[str, Any]:
    from deepscope.api import train

    settings = {**job.params["settings"], "device": device}  # the device of this worker
    folder = train(resume=job.attempts > 1, progress=progress, **settings)
    return {"model": folder.name, "folder": str(folder)}


def _check_some_done(done: list, skipped: list[str]) -> None:
    """A batch in which every image was skipped has failed: say why the first one was."""
    if skipped and not done:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise InputError(f"no image could be processed; {skipped[0]}{more}")


def _batch(job: Job, progress: JobProgress, results: Path, device: str) -> dict[str, Any]:
    """Predict or count every image of a folder; an image that cannot be read or
    processed is skipped and named in the result, as with ``--keep-going``."""
    from deepscope.api import count_files, draws_overlays, load_model, predict_files

    p = job.params
    out = results / f"job-{job.id}"
    model = load_model(p["model"], device=device)
    skipped: list[str] = []

    def skip(path: Path, error: Exception) -> None:
        skipped.append(str(error))

    if p.get("mode", "preview") == "count":
        summaries = count_files(
            model,
            p["inputs"],
            out,
            ranges=p.get("ranges", []),
            exclude_border=p.get("exclude_border", False),
            split=p.get("split", False),
            progress=progress,
            on_error=skip,
            channel=p.get("channel"),
        )
        _check_some_done(summaries, skipped)
        return {
            "out": str(out),
            "images": len(summaries),
            "summary": "summary.csv",
            "skipped": skipped,
        }
    overlay = draws_overlays(model)
    written = predict_files(
        model,
        p["inputs"],
        out,
        overlay=overlay,
        progress=progress,
        on_error=skip,
        channel=p.get("channel"),
    )
    _check_some_done(written, skipped)
    return {"out": str(out), "files": [f.name for f in written], "skipped": skipped}


def _evaluate(job: Job, progress: JobProgress, results: Path, device: str) -> dict[str, Any]:
    """Score a model on a folder with ground truth; a restoration model also gets the
    quality-control report (prediction, Gaussian baseline and input against the truth)."""
    from deepscope.api import evaluate, predict_files
    from deepscope.report import qc_report
    from deepscope.zoo import load_model

    p = job.params
    out = results / f"job-{job.id}"
    model = load_model(p["model"], device=device)
    metrics = evaluate(
        model, p["images"], p["truth"], per_image_csv=out / "per_image.csv", progress=progress
    )
    answer = {"out": str(out), "metrics": metrics, "files": ["per_image.csv"]}
    if model.task.target_is_image:
        predict_files(model, [p["images"]], out / "pred", progress=progress)
        qc_report(out / "pred", p["truth"], out / "report.html", p["images"], model, progress)
        answer["files"].append("report.html")
    return answer


RUNNERS = {
    "train": _train,
    "batch": _batch,
    "evaluate": _evaluate,
}


def run_job(store: JobStore, job: Job, results: Path, device: str = "cpu") -> str:
    """Run one claimed ``job`` on ``device`` to its end and record how it ended; returns
    the status."""
    progress = JobProgress(store, job.id)
    try:
        result = RUNNERS[job.kind](job, progress, results, device)
    except (KeyboardInterrupt, TrainingInterrupted):
        if not store.stop_requested(job.id):
            raise  # the worker is shutting down: the job stays 'running' and is recovered
        status, result, error = "stopped", None, "stopped on request"
    except DeepscopeError as err:
        status, result, error = "failed", None, str(err)
    except Exception as err:  # a job must never take its worker down
        status, result, error = "failed", None, f"{type(err).__name__}: {err}"
    else:
        status, error = "done", None
    store.finish(job.id, status, result, error)
    store.add_event(job.id, {"stage": status, "done": 1, "total": 1, "message": error or ""})
    return status


def run_next(store: JobStore, results: Path, device: str = "cpu") -> str | None:
    """Claim and run the oldest queued job of ``device``; None when there is none."""
    job = store.claim_next(device)
    return run_job(store, job, results, device) if job is not None else None


def worker_loop(db_path: str, results: str, device: str = "cpu", poll: float = 0.5) -> None:
    """The body of a worker process: run jobs until killed."""
    store = JobStore(db_path)
    try:
        while True:
            if run_next(store, Path(results), device) is None:
                time.sleep(poll)
    except (KeyboardInterrupt, TrainingInterrupted):
        return  # terminated; a training checkpointed on the way out


def start_worker(db_path: Path, results: Path, device: str = "cpu") -> multiprocessing.Process:
    """A worker process (spawned, so it holds no state of the server) for ``device``."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=worker_loop, args=(str(db_path), str(results), device), daemon=True
    )
    process.start()
    return process
