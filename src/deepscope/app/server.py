"""``deepscope serve``: the web app and its JSON API (FastAPI).

The pages and the API are a face on the public API (:mod:`deepscope.api`,
:mod:`deepscope.zoo`, the training settings); they hold no analysis logic. Jobs
(trainings, batch predictions) go through the SQLite queue of :mod:`deepscope.app.jobs`
to worker processes.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from deepscope import __version__
from deepscope.app.analysis import MODES, analyse
from deepscope.app.forms import train_form
from deepscope.app.jobs import FINISHED, Job, JobStore
from deepscope.app.security import (
    COOKIE,
    OutsideDataRoots,
    authorised,
    check_exposure,
    confine,
    session_value,
)
from deepscope.app.state import hold_state_dir, remove_old_results
from deepscope.app.worker import start_worker
from deepscope.devices import resolve_device
from deepscope.errors import DeepscopeError, InputError, UnknownModel
from deepscope.home import deepscope_home, user_library
from deepscope.io.header import pixel_values
from deepscope.io.paths import SUPPORTED_EXTENSIONS, is_image_path, split_path
from deepscope.spec import SPEC_FILE, read_spec
from deepscope.tasks import TASKS, task_class
from deepscope.train.history import read_history
from deepscope.zoo import (
    export_model,
    favourites,
    import_model,
    list_models,
    load_model,
    remove_model,
    resolve_name,
    set_favourite,
)
from deepscope.zoo.registry import model_summary

HERE = Path(__file__).parent
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: loaded models kept in memory for the next request
MODEL_CACHE = 3
#: uploads the Analyse page takes (a zarr store is a folder, not a file)
IMAGE_UPLOADS = tuple(e for e in SUPPORTED_EXTENSIONS if e != ".zarr")
#: paths that need no login: the login page itself and the static assets
_OPEN = ("/login", "/static/")


class ServerSettings(BaseModel):
    """How ``deepscope serve`` runs; the CLI options map one to one onto these."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    data_roots: list[Path] = Field(default_factory=list)
    token: str | None = None
    state_dir: Path = Field(default_factory=lambda: deepscope_home() / "server")
    max_upload_mb: float = Field(200, gt=0)
    max_image_megapixels: float = Field(
        200, gt=0, description="largest image the Analyse page predicts (pixels x channels)"
    )
    keep_results_days: float = Field(
        7, gt=0, description="previews and exports older than this are deleted at start"
    )
    workers: bool = Field(True, description="start a worker process for jobs")
    device: str = "auto"


class JobRequest(BaseModel):
    kind: str = Field(description="train, batch or evaluate")
    params: dict[str, Any] = Field(default_factory=dict)


class Models:
    """Loaded models by name, the most recently used kept; one prediction at a time."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.lock = threading.Lock()
        self._loaded: OrderedDict[str, Any] = OrderedDict()

    def get(self, name: str):
        # resolved on every call, so that a model removed or replaced since it was loaded
        # is refused or reloaded, never served from the cache
        folder, _ = resolve_name(name)  # a library name: never a path on the server
        version = (str(folder), (folder / SPEC_FILE).stat().st_mtime_ns)
        cached = self._loaded.get(name)
        if cached is None or cached[0] != version:
            self._loaded[name] = (version, load_model(folder, device=self.device))
            while len(self._loaded) > MODEL_CACHE:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(name)
        return self._loaded[name][1]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


#: a job id as SQLite stores it: larger numbers are a 422, not a crash of the query
JobId = Annotated[int, FastAPIPath(ge=1, le=2**62)]


def _text(params: dict[str, Any], key: str) -> str:
    """A required text field of job parameters (a folder, say), else a clear error."""
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"params.{key} is required: a folder under a data root")
    return value


def _flag(params: dict[str, Any], key: str) -> bool:
    """An optional true/false field of job parameters (false when absent)."""
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"params.{key} must be true or false, got {json.dumps(value)[:40]}")
    return value


def _known_keys(params: dict[str, Any], known: tuple[str, ...]) -> None:
    """A misspelt parameter is an error, not silently ignored."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"unknown job parameter(s) {', '.join(unknown)}; this kind of job takes "
            f"{', '.join(known)}"
        )


def _confined_tree(path: str, roots: list[Path]) -> Path:
    """A folder (or file) under the data roots none of whose entries is a symbolic link
    leading out of them: jobs read every file of the folder."""
    target = confine(path, roots)
    if not target.exists():
        raise InputError(f"'{path}' does not exist under the data roots; give a folder there")
    if target.is_dir():
        for entry in target.rglob("*"):
            if entry.is_symlink():
                confine(entry, roots)
    return target


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The web app; ``settings`` default to a loopback server without a token."""
    settings = settings or ServerSettings()
    check_exposure(settings.host, settings.token)
    state = settings.state_dir
    results = state / "results"
    uploads = state / "uploads"
    store = JobStore(state / "jobs.sqlite")
    device = resolve_device(settings.device).type
    models = Models(device)
    roots = [root.resolve() for root in settings.data_roots]
    limit = int(settings.max_upload_mb * 1024 * 1024)
    templates = Jinja2Templates(directory=HERE / "templates")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with hold_state_dir(state):
            shutil.rmtree(uploads, ignore_errors=True)  # left by requests of a server that died
            remove_old_results(results, settings.keep_results_days)
            store.recover()
            worker = start_worker(store.path, results, device) if settings.workers else None
            yield
            if worker is not None:
                worker.terminate()  # SIGTERM: a training checkpoints, the job is recovered
                worker.join(timeout=30)

    app = FastAPI(
        title="deepscope",
        version=__version__,
        description="Deep learning for microscopy: models, Predict Preview, Count, training.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the app must work offline
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if not path.startswith(_OPEN) and not authorised(
            settings.token,
            request.headers.get("authorization"),
            request.cookies.get(COOKIE),
        ):
            if path.startswith("/api"):
                return _error(401, "a valid token is needed: send 'Authorization: Bearer TOKEN'")
            return RedirectResponse(f"/login?next={path}", status_code=303)
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > limit:
            return _error(413, f"the upload is larger than {settings.max_upload_mb:g} MB")
        return await call_next(request)

    upload_folder = re.compile(re.escape(str(uploads)) + r"[/\\][0-9a-f]{32}[/\\]")

    library = str(user_library())

    def public(message: str) -> str:
        """A message without the server's own folders: an upload is named by its file name,
        the library as My models."""
        message = upload_folder.sub("", message).replace(str(state), "<state folder>")
        return message.replace(library, "<My models>")

    def shown(job: Job) -> dict:
        """A job as the API shows it: its error without the server's folders."""
        return {**job.as_dict(), "error": public(job.error) if job.error else job.error}

    @app.exception_handler(DeepscopeError)
    async def user_error(request: Request, err: DeepscopeError) -> JSONResponse:
        return _error(400, public(str(err)))

    @app.exception_handler(UnknownModel)
    async def unknown_model(request: Request, err: UnknownModel) -> JSONResponse:
        # a missing resource under /api/models/NAME; an unknown name in a form is a bad request
        return _error(404 if request.url.path.startswith("/api/models/") else 400, str(err))

    @app.exception_handler(OutsideDataRoots)
    async def outside(request: Request, err: OutsideDataRoots) -> JSONResponse:
        return _error(403, str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        # one line, as every other error: the first field and what is wrong with it
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return _error(422, f"{field}: {first['msg']}")

    # ------------------------------------------------------------------ pages
    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, f"{name}.html", {"page": name, "version": __version__, **context}
        )

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/analyse")

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/analyse") -> HTMLResponse:
        return page(request, "login", next=next if next.startswith("/") else "/", failed=False)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
        if not authorised(settings.token, f"Bearer {token}", None):
            return page(request, "login", next=next, failed=True)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if settings.token:
            response.set_cookie(
                COOKIE,
                session_value(settings.token),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    @app.get("/models", include_in_schema=False)
    def models_page(request: Request) -> HTMLResponse:
        return page(request, "models")

    @app.get("/analyse", include_in_schema=False)
    def analyse_page(request: Request) -> HTMLResponse:
        return page(request, "analyse", roots=[str(r) for r in roots])

    @app.get("/train", include_in_schema=False)
    def train_page(request: Request, task: str = "semantic") -> HTMLResponse:
        return page(request, "train", form=train_form(task), task=task, tasks=sorted(TASKS))

    @app.get("/jobs", include_in_schema=False)
    def jobs_page(request: Request) -> HTMLResponse:
        return page(request, "jobs")

    # ------------------------------------------------------------------ API
    @app.get("/api/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "device": device}

    @app.get("/api/models")
    def api_models(
        task: str | None = None,
        architecture: str | None = None,
        domain: str | None = None,
        source: str | None = None,
        favourites: bool = False,
    ) -> list[dict]:
        """The same objects as ``deepscope models list --json``."""
        return list_models(task, architecture, domain, source, favourites)

    @app.get("/api/models/{name}")
    def api_model(name: str) -> dict:
        """One model's summary and its training curves (``history``)."""
        folder, source = resolve_name(name)
        summary = model_summary(read_spec(folder), source, folder, name in favourites())
        return {**summary, "name": name, "history": read_history(folder / "history.csv")}

    @app.post("/api/models/{name}/favourite")
    def api_favourite(name: str, favourite: Annotated[bool, Body(embed=True)] = True) -> dict:
        resolve_name(name)
        set_favourite(name, favourite)
        return {"name": name, "favourite": favourite}

    @app.get("/api/models/{name}/export")
    def api_export(name: str, format: str = "deepscope") -> FileResponse:
        """The model as a zip: our package (``deepscope``) or a bioimage.io model."""
        package, _ = resolve_name(name)
        folder = results / f"export-{uuid.uuid4().hex}"
        try:
            path = export_model(package, folder / f"{name}-{format}.zip", format)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-made stays behind
            raise
        return FileResponse(
            path,
            filename=path.name,
            media_type="application/zip",
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @app.post("/api/models/import")
    def api_import(
        file: Annotated[UploadFile, File()],
        name: Annotated[str | None, Form()] = None,
        replace: Annotated[bool, Form()] = False,
    ) -> dict:
        """Check a model zip (ours or bioimage.io) and add it to My models."""
        staging = uploads / uuid.uuid4().hex
        try:
            archive = _save_upload(
                file, staging, (".zip",), "a model zip (deepscope or bioimage.io)"
            )
            folder = import_model(archive, name or None, replace)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"name": folder.name, "source": "user"}

    @app.delete("/api/models/{name}")
    def api_remove(name: str) -> dict:
        """Remove a model from My models (built-in models cannot be removed)."""
        remove_model(name)
        return {"name": name, "removed": True}

    @app.get("/api/files")
    def api_files(path: str = Query("", description="folder under a data root")) -> dict:
        """The sub-folders and image files of a folder under the data roots."""
        if not path:
            return {"path": "", "folders": [str(r) for r in roots], "images": []}
        folder = confine(path, roots)
        if not folder.is_dir():
            raise InputError(f"'{path}' is not a folder")
        entries = sorted(folder.iterdir())
        images = [e for e in entries if is_image_path(e)]  # files, and .zarr stores
        return {
            "path": str(folder),
            "folders": [
                e.name
                for e in entries
                if e.is_dir() and not e.name.startswith(".") and e not in images
            ],
            "images": [e.name for e in images],
        }

    @app.post("/api/predict")
    def api_predict(
        model: Annotated[str, Form()],
        file: Annotated[UploadFile | None, File()] = None,
        path: Annotated[str | None, Form()] = None,
        mode: Annotated[str, Form()] = "preview",
        ranges: Annotated[list[str] | None, Form()] = None,
        split: Annotated[bool, Form()] = False,
        exclude_border: Annotated[bool, Form()] = False,
        channel: Annotated[int | None, Form(ge=0)] = None,
    ) -> dict:
        """Predict Preview (every object) or Count (ranges, split) of one image: an
        upload (``file``) or a file under a data root (``path``); ``channel``: the channel
        of a multichannel image to segment."""
        if mode not in MODES:
            raise InputError(f"mode must be preview or count, got '{mode}'")
        if (file is None) == (path is None):
            raise InputError("send an image: a file upload or a path under a data root")
        rid = uuid.uuid4().hex
        ranges = [r for text in ranges or [] for r in text.splitlines() if r.strip()]
        try:
            image = _save_upload(file, uploads / rid) if file is not None else _server_image(path)
            _check_image_size(image)
            with models.lock:
                answer = analyse(
                    models.get(model),
                    image,
                    results / rid,
                    mode,
                    ranges,
                    split,
                    exclude_border,
                    channel,
                )
        finally:
            shutil.rmtree(uploads / rid, ignore_errors=True)  # the results hold what is shown
        base = f"/api/results/{rid}"
        answer["id"] = rid
        answer["urls"] = {k: f"{base}/{v}" for k, v in answer.pop("pictures").items()}
        answer["downloads"] = {f: f"{base}/{f}" for f in answer.pop("files")}
        return answer

    def _server_image(path: str) -> Path:
        """A file under a data root, with the dataset or array inside it where one is
        named (``cells.h5:raw``, ``plate.zarr/A/1/0``)."""
        file, inner = split_path(path)
        file = confine(file, roots)
        if not file.exists():
            raise InputError(f"'{path}' does not exist under the data roots")
        if not is_image_path(file):
            raise InputError(f"'{path}' is not an image file this server reads")
        return Path(f"{file}:{inner}") if inner else file

    def _check_image_size(image: Path) -> None:
        """A 413 for an image that would decode into more values than the server takes
        (a small compressed file can hold gigabytes), read from the file's header."""
        values = pixel_values(image)
        if values is not None and values > settings.max_image_megapixels * 1e6:
            raise HTTPException(
                413,
                f"the image holds {values / 1e6:,.2f} million values, more than this server "
                f"predicts on the Analyse page ({settings.max_image_megapixels:g} million); "
                "run it as a batch job",
            )

    def _save_upload(
        upload: UploadFile,
        folder: Path,
        endings: tuple[str, ...] = IMAGE_UPLOADS,
        what: str = "an image file this server reads",
    ) -> Path:
        """Write an upload to ``folder`` in chunks, stopping at the size limit; only files
        with one of ``endings`` are taken."""
        name = _SAFE_NAME.sub("_", Path(upload.filename or "upload").name).lstrip(".")
        if not name.lower().endswith(endings):
            raise InputError(f"'{upload.filename}' is not {what} ({', '.join(endings)})")
        folder.mkdir(parents=True, exist_ok=True)
        target, written = folder / name, 0
        with open(target, "wb") as fh:
            while chunk := upload.file.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    fh.close()
                    target.unlink()
                    raise HTTPException(
                        413, f"the upload is larger than {settings.max_upload_mb:g} MB"
                    )
                fh.write(chunk)
        return target

    @app.get("/api/results/{rid}/{name}")
    def api_result(rid: str, name: str) -> FileResponse:
        if not re.fullmatch(r"[0-9a-f]{32}|job-\d+", rid) or "/" in name or name.startswith("."):
            raise HTTPException(404, "no such result")
        target = results / rid / name
        if not target.is_file():
            raise HTTPException(404, "no such result")
        return FileResponse(target, filename=name)

    @app.post("/api/jobs")
    def api_submit(job: JobRequest) -> dict:
        """Queue a training (``kind: train``, ``params.settings``: training settings), a
        batch prediction (``kind: batch``: ``model``, ``folder`` under a data root,
        ``mode``, ``ranges``, ``split``) or a quality check (``kind: evaluate``: ``model``,
        ``images`` and ``truth`` folders: metrics, and a QC report for restoration)."""
        return store.submit(job.kind, _checked_params(job), device).as_dict()

    def _model_named(p: dict[str, Any]) -> Path:
        """The folder of the library model that ``params.model`` names."""
        if not isinstance(p.get("model"), str) or not p["model"].strip():
            raise InputError("params.model is required: the name of a model in the library")
        return resolve_name(p["model"])[0]

    def _names_in_training() -> set[str]:
        """Model names of the trainings queued, running or stopped (resumable)."""
        return {
            job.params["settings"].get("name")
            for job in store.list(limit=100_000)
            if job.kind == "train" and job.status in ("queued", "running", "stopped")
        }

    def _checked_params(job: JobRequest) -> dict[str, Any]:
        from deepscope.count import check_ranges_before_counting, parse_range
        from deepscope.train.config import make_train_config
        from deepscope.zoo.registry import builtin_names

        p = job.params
        if job.kind == "train":
            _known_keys(p, ("settings",))
            given = p.get("settings", {})
            if not isinstance(given, dict):
                raise InputError("params.settings must be an object of training settings")
            given = dict(given)
            for key in ("images", "masks", "val_images", "val_masks", "mapping"):
                if given.get(key):
                    given[key] = str(_confined_tree(_text(given, key), roots))
            given.pop("out", None)  # trainings land in the user's library
            if given.get("init_from"):
                resolve_name(given["init_from"])  # a library model, not a path on the server
            config = make_train_config(given, source="the training form")  # fail now
            if config.name in builtin_names():
                raise InputError(
                    f"'{config.name}' is the name of a built-in model; name the training otherwise"
                )
            if (config.package_dir / SPEC_FILE).exists() or config.name in _names_in_training():
                raise InputError(
                    f"My models already holds a model or a training named '{config.name}'; "
                    "name the training otherwise, or remove that model first"
                )
            return {"settings": given}
        if job.kind == "batch":
            _known_keys(
                p, ("model", "folder", "mode", "ranges", "split", "exclude_border", "channel")
            )
            channel = p.get("channel")
            if channel is not None and (
                not isinstance(channel, int) or isinstance(channel, bool) or channel < 0
            ):
                raise InputError(
                    f"params.channel must be a channel number (0 = the first), got {channel!r}"
                )
            spec = read_spec(_model_named(p))
            folder = _confined_tree(_text(p, "folder"), roots)
            if p.get("mode", "preview") not in MODES:
                raise InputError(f"mode must be preview or count, got '{p.get('mode')}'")
            if p.get("mode") == "count" and task_class(spec.task).output_kind != "labels":
                raise InputError(
                    f"model '{p['model']}' does not segment objects; count needs one that does "
                    "(or mode 'preview')"
                )
            ranges = p.get("ranges", [])
            if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
                raise InputError("params.ranges must be a list of ranges such as 'area=30:2000'")
            parsed = [parse_range(text) for text in ranges]  # bad ranges fail now
            check_ranges_before_counting(parsed, getattr(spec.network, "ndim", 2))
            return {
                "model": p["model"],
                "inputs": [str(folder)],
                "mode": p.get("mode", "preview"),
                "ranges": ranges,
                "split": _flag(p, "split"),
                "exclude_border": _flag(p, "exclude_border"),
                "channel": channel,
            }
        if job.kind == "evaluate":
            _known_keys(p, ("model", "images", "truth"))
            spec = read_spec(_model_named(p))
            images = str(_confined_tree(_text(p, "images"), roots))
            if spec.task == "classify":  # the truth is the class sub-folders of the images
                return {"model": p["model"], "images": images, "truth": None}
            return {
                "model": p["model"],
                "images": images,
                "truth": str(_confined_tree(_text(p, "truth"), roots)),
            }
        raise InputError(f"job kind must be train, batch or evaluate, got '{job.kind}'")

    @app.get("/api/jobs")
    def api_jobs() -> list[dict]:
        return [shown(j) for j in store.list()]

    @app.get("/api/jobs/{job_id}")
    def api_job(job_id: JobId) -> dict:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return {**shown(job), "events": [e for _, e in store.events(job_id)][-500:]}

    @app.post("/api/jobs/{job_id}/stop")
    def api_stop(job_id: JobId) -> dict:
        job = store.request_stop(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job.as_dict()

    @app.post("/api/jobs/{job_id}/resume")
    def api_resume(job_id: JobId) -> dict:
        job = store.requeue(job_id)
        if job is None:
            raise HTTPException(409, f"job {job_id} is not stopped or failed; nothing to resume")
        return job.as_dict()

    @app.get("/api/jobs/{job_id}/events")
    async def api_events(
        job_id: JobId, after: Annotated[int, Query(ge=0, le=2**62)] = 0
    ) -> StreamingResponse:
        """Server-sent events: the job's progress events, then its end."""
        if store.get(job_id) is None:
            raise HTTPException(404, f"no job {job_id}")

        async def stream() -> AsyncIterator[str]:
            seen = after
            while True:
                for seq, event in store.events(job_id, seen):
                    seen = seq
                    yield f"id: {seq}\ndata: {json.dumps(event)}\n\n"
                job = store.get(job_id)
                if job.status in FINISHED and not store.events(job_id, seen):
                    yield f"event: end\ndata: {json.dumps(job.as_dict())}\n\n"
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/api/train/form")
    def api_train_form(task: str = "semantic") -> list[dict]:
        """The fields of the training form of ``task``, with the guided defaults."""
        return train_form(task)

    return app
