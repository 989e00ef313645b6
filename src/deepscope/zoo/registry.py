"""The model library: built-in models shipped in the package, the user's own models
(``$DEEPSCOPE_HOME/models`` or the platform's user-data folder) and favourites."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from deepscope.errors import ModelError, UnknownModel
from deepscope.home import deepscope_home, user_library
from deepscope.spec import SPEC_FILE, ModelSpec, check_model_name, is_model_name, read_spec

BUILTIN_DIR = Path(__file__).parent / "builtin"
SOURCES = ("builtin", "user")


def _favourites_file() -> Path:
    return deepscope_home() / "favourites.json"


def _packages(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / SPEC_FILE).is_file())


def builtin_names() -> list[str]:
    """Names of the models shipped inside the package."""
    return [p.name for p in _packages(BUILTIN_DIR)]


def user_names() -> list[str]:
    """Names of the models in the user's library."""
    return [p.name for p in _packages(user_library()) if is_model_name(p.name)]


def resolve_model(name_or_path: str | Path) -> tuple[Path, str]:
    """Folder of a model package and where it came from (``path``, ``builtin``, ``user``)."""
    path = Path(name_or_path)
    if path.is_dir() and (path / SPEC_FILE).is_file():
        # a built-in stays read-only when it is given by its folder
        builtin = path.resolve().parent == BUILTIN_DIR.resolve()
        return path, "builtin" if builtin else "path"
    if path.is_dir():  # an output folder named like a model must not hide the model
        try:
            return resolve_name(str(name_or_path))
        except UnknownModel:
            raise ModelError(
                f"'{path}' is a folder but not a model package (no {SPEC_FILE})"
            ) from None
    return resolve_name(str(name_or_path))


def resolve_name(name: str) -> tuple[Path, str]:
    """Folder of a built-in or library model found by its name, never by a path (for
    servers, where a path would reach any folder of the machine), and its source."""
    if is_model_name(name):
        if (BUILTIN_DIR / name / SPEC_FILE).is_file():
            return BUILTIN_DIR / name, "builtin"
        if (user_library() / name / SPEC_FILE).is_file():
            return user_library() / name, "user"
    known = ", ".join(builtin_names() + user_names()) or "none"
    raise UnknownModel(
        f"unknown model '{str(name)[:100]}'; give the name of one of: {known} "
        "(see 'deepscope models list')"
    )


def favourites() -> list[str]:
    """Names the user marked as favourites (models since removed are skipped)."""
    path = _favourites_file()
    try:
        names = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        names = None
    if not isinstance(names, list):
        raise ModelError(f"{path} is damaged; delete it to start a new favourites list")
    known = set(builtin_names()) | set(user_names())
    return [n for n in names if isinstance(n, str) and n in known]


def set_favourite(name: str, favourite: bool = True) -> list[str]:
    """Mark (or unmark) a built-in or library model as a favourite, given by its name (a
    folder of the current directory with that name does not hide it) or its folder in the
    package or library; returns the new list."""
    if is_model_name(str(name)):
        try:
            resolve_name(str(name))
        except UnknownModel:
            name = _library_name(name)
    else:
        name = _library_name(name)
    names = [n for n in favourites() if n != name] + ([name] if favourite else [])
    path = _favourites_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(sorted(names), indent=2) + "\n")
    os.replace(tmp, path)
    return sorted(names)


def _library_name(path: str | Path) -> str:
    """The name of the built-in or library model whose folder ``path`` is."""
    folder, source = resolve_model(path)
    if source == "path" and folder.resolve().parent != user_library().resolve():
        raise ModelError(
            f"'{path}' is a folder, not a model in the library; import it first "
            "(deepscope models import PATH)"
        )
    return folder.resolve().name


def refuse_builtin(name: str, source: str, action: str) -> None:
    """A clear error when ``action`` (a verb: "quantize", "tune") would change a built-in
    model, which is read-only: the user copies it into the library first."""
    if source == "builtin":
        raise ModelError(
            f"'{name}' is a built-in model, which is read-only; copy it into your library "
            f"first (deepscope models export {name} --out copy.zip; deepscope models import "
            f"copy.zip --name NEW) and {action} that"
        )


def remove_model(name: str) -> Path:
    """Delete a model from the user's library (built-in models cannot be removed), or the
    checkpoints of an interrupted training of that name that will not be resumed."""
    check_model_name(name)
    if name in builtin_names():
        raise ModelError(f"'{name}' is a built-in model and cannot be removed")
    folder = user_library() / name
    unfinished = (folder / "checkpoints").is_dir()  # an interrupted training, not a model yet
    if not (folder / SPEC_FILE).is_file() and not unfinished:
        raise UnknownModel(f"no model '{name}' in your library; see 'deepscope models list'")
    if name in favourites():
        set_favourite(name, False)
    trash = folder.with_name(f".{name}.removing")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(folder, trash)  # one atomic step; the rest is cleanup
    shutil.rmtree(trash, ignore_errors=True)
    return folder


def model_summary(spec: ModelSpec, source: str, folder: Path, favourite: bool) -> dict:
    """What the library shows about one model: identity, purpose, data, figures, origin."""
    training = spec.training
    return {
        "name": spec.name,
        "version": spec.version,
        "task": spec.task,
        "architecture": spec.tags.architecture,
        "domain": spec.tags.domain,
        "dimensionality": spec.tags.dimensionality,
        "channels": spec.network.in_channels,
        "input_axes": spec.input_axes,
        "pixel_size": spec.pixel_size,
        "description": spec.description,
        "training_data": training.get("data", {}),
        "training_settings": training.get("settings", {}),
        "validation": {k: v for k, v in spec.validation.items() if not isinstance(v, list)},
        "int8": spec.int8 is not None,
        "licence": spec.licence,
        "authors": spec.authors,
        "created": spec.created,
        "source": source,
        "favourite": favourite,
        "path": str(folder),
    }


def list_models(
    task: str | None = None,
    architecture: str | None = None,
    domain: str | None = None,
    source: str | None = None,
    favourites_only: bool = False,
) -> list[dict]:
    """Summaries of the available models, built-in first, then the user's library.

    Filters keep models whose ``task`` / ``architecture`` equal the value given, whose
    ``domain`` contains it (``"nuclei"`` matches ``"fluorescence nuclei"``; case ignored),
    from one ``source`` (``builtin`` or ``user``), or only favourites.
    """
    if source not in (None, *SOURCES):
        raise ModelError(f"source must be builtin or user, got '{source}'")
    library = user_library()
    if (library.exists() and not library.is_dir()) or library.parent.is_file():
        raise ModelError(
            f"the model library '{library}' cannot be a folder: a file is in the way "
            "(check DEEPSCOPE_HOME, which must name a folder)"
        )
    favs = set(favourites())
    rows = []
    for base, where in ((BUILTIN_DIR, "builtin"), (user_library(), "user")):
        if source not in (None, where):
            continue
        for folder in _packages(base):
            if not is_model_name(folder.name):  # copied by hand, say 'cells (copy)'
                warnings.warn(
                    f"skipped '{folder}': its name cannot name a model; rename the folder "
                    "(letters, digits, '.', '_' and '-')",
                    stacklevel=2,
                )
                continue
            try:
                spec = read_spec(folder)
            except ModelError as err:
                newer = "upgrade deepscope" in str(err)
                what = (
                    "a model package of a newer deepscope" if newer else "a damaged model package"
                )
                warnings.warn(f"skipped {what}: {err}", stacklevel=2)
                continue
            row = model_summary(spec, where, folder, folder.name in favs)
            row["name"] = folder.name  # the name that loads it
            if task and row["task"] != task:
                continue
            if architecture and row["architecture"] != architecture:
                continue
            if domain and domain.lower() not in row["domain"].lower():
                continue
            if favourites_only and not row["favourite"]:
                continue
            rows.append(row)
    return rows
