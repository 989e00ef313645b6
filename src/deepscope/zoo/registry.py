"""Find model packages: a path, a built-in name, or a name in the user's library."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from deepscope.errors import ModelError
from deepscope.spec import SPEC_FILE, read_spec

BUILTIN_DIR = Path(__file__).parent / "builtin"


def user_library() -> Path:
    """The user's model folder: ``$DEEPSCOPE_HOME/models`` or the platform's user-data folder."""
    home = os.environ.get("DEEPSCOPE_HOME")
    base = Path(home) if home else Path(platformdirs.user_data_dir("deepscope"))
    return base / "models"


def builtin_names() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / SPEC_FILE).is_file())


def resolve_model(name_or_path: str | Path) -> tuple[Path, str]:
    """Folder of a model package and where it came from (``path``, ``builtin``, ``user``)."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / SPEC_FILE).is_file():
            raise ModelError(f"'{path}' is a folder but not a model package (no {SPEC_FILE})")
        return path, "path"
    name = str(name_or_path)
    if (BUILTIN_DIR / name / SPEC_FILE).is_file():
        return BUILTIN_DIR / name, "builtin"
    if (user_library() / name / SPEC_FILE).is_file():
        return user_library() / name, "user"
    known = builtin_names() + sorted(
        p.name for p in user_library().glob("*") if (p / SPEC_FILE).is_file()
    )
    raise ModelError(
        f"unknown model '{name}'; give a model folder or one of: {', '.join(known) or 'none'} "
        "(see 'deepscope models list')"
    )


def list_models() -> list[dict]:
    """One summary per available model (built-in first, then the user's library)."""
    rows = []
    sources = [(BUILTIN_DIR, "builtin"), (user_library(), "user")]
    for base, source in sources:
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if not (folder / SPEC_FILE).is_file():
                continue
            spec = read_spec(folder)
            rows.append(
                {
                    "name": spec.name,
                    "task": spec.task,
                    "architecture": spec.tags.architecture,
                    "domain": spec.tags.domain,
                    "dimensionality": spec.tags.dimensionality,
                    "version": spec.version,
                    "source": source,
                    "path": str(folder),
                    "description": spec.description,
                }
            )
    return rows
