"""A job queue in SQLite: trainings and batch predictions that outlive the server.

Jobs are rows (``queued`` → ``running`` → ``done`` | ``failed`` | ``stopped``); their
progress events are rows too, numbered per job, so every browser tab (and a page opened
later) reads the same history. SQLite makes a queued or running job survive a restart of
the server: :meth:`JobStore.recover` puts the jobs that were running back in the queue,
and a training job that ran before resumes from its checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("train", "batch", "evaluate")
FINISHED = ("done", "failed", "stopped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    device TEXT NOT NULL DEFAULT 'cpu',
    attempts INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    job_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


@dataclass(frozen=True)
class Job:
    """One row of the queue, as the API shows it."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str
    device: str
    attempts: int
    stop_requested: bool
    result: dict[str, Any] | None
    error: str | None
    created: float
    updated: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "status": self.status,
            "device": self.device,
            "attempts": self.attempts,
            "stop_requested": self.stop_requested,
            "result": self.result,
            "error": self.error,
            "created": self.created,
            "updated": self.updated,
        }


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        device=row["device"],
        attempts=row["attempts"],
        stop_requested=bool(row["stop_requested"]),
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        created=row["created"],
        updated=row["updated"],
    )


class JobStore:
    """The queue in one SQLite file; safe to open from the server and its workers at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        try:
            yield db
        finally:
            db.close()

    def submit(self, kind: str, params: dict[str, Any], device: str = "cpu") -> Job:
        """Queue a job of ``kind`` (``train`` or ``batch``) with JSON-able ``params``."""
        if kind not in KINDS:
            raise ValueError(f"job kind must be one of {', '.join(KINDS)}, got '{kind}'")
        now = time.time()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO jobs (kind, params, device, created, updated) VALUES (?, ?, ?, ?, ?)",
                (kind, json.dumps(params), device, now, now),
            )
            return self.get(cursor.lastrowid)

    def get(self, job_id: int) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def claim_next(self, device: str = "cpu") -> Job | None:
        """Mark the oldest queued job of ``device`` running and return it (None: queue
        empty, or a job already runs on that device: one at a time per device)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            busy = db.execute(
                "SELECT 1 FROM jobs WHERE status = 'running' AND device = ?", (device,)
            ).fetchone()
            row = None
            if not busy:
                row = db.execute(
                    "SELECT id FROM jobs WHERE status = 'queued' AND device = ? "
                    "ORDER BY id LIMIT 1",
                    (device,),
                ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated = ? "
                    "WHERE id = ?",
                    (time.time(), row["id"]),
                )
            db.execute("COMMIT")
        return self.get(row["id"]) if row is not None else None

    def finish(
        self,
        job_id: int,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if status not in FINISHED:
            raise ValueError(f"a finished job is one of {', '.join(FINISHED)}, got '{status}'")
        if error is not None:  # a file name that is not UTF-8 would make SQLite refuse it
            error = error.encode("utf-8", "backslashreplace").decode("utf-8")
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, updated = ? WHERE id = ?",
                (status, json.dumps(result) if result else None, error, time.time(), job_id),
            )

    def request_stop(self, job_id: int) -> Job | None:
        """Ask a running job to stop (its worker checks between steps); a queued job is
        stopped at once. Returns the job as it is now."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status = CASE status WHEN 'queued' THEN 'stopped' "
                "ELSE status END, stop_requested = 1, updated = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (time.time(), job_id),
            )
        return self.get(job_id)

    def stop_requested(self, job_id: int) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def requeue(self, job_id: int) -> Job | None:
        """Put a stopped or failed job back in the queue (a training resumes from its
        checkpoint). Returns the job, or None when it is not stopped or failed."""
        with self._connect() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'queued', stop_requested = 0, error = NULL, "
                "updated = ? WHERE id = ? AND status IN ('stopped', 'failed')",
                (time.time(), job_id),
            ).rowcount
        return self.get(job_id) if changed else None

    def recover(self) -> list[int]:
        """After a restart: jobs left ``running`` by a server that went away are queued
        again (they resume); returns their ids."""
        with self._connect() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status = 'running'").fetchall()
            db.execute(
                "UPDATE jobs SET status = 'queued', updated = ? WHERE status = 'running'",
                (time.time(),),
            )
        return [r["id"] for r in rows]

    def add_event(self, job_id: int, data: dict[str, Any]) -> int:
        """Append a progress event to a job; returns its sequence number."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (job_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO events (job_id, seq, data) VALUES (?, ?, ?)",
                (job_id, seq, json.dumps(data)),
            )
            db.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))
            db.execute("COMMIT")
        return seq

    def events(self, job_id: int, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """The job's events numbered above ``after``, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT seq, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, after),
            ).fetchall()
        return [(r["seq"], json.loads(r["data"])) for r in rows]
