"""Move model packages in and out of the library: zip files, folders, bioimage.io.

Everything is checked before it lands in the library: the package must read and its
weights must match their sha256; zip members may not escape the folder they unpack into.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from deepscope.errors import DeepscopeError, ModelError
from deepscope.home import user_library
from deepscope.io.atomic import check_output_file
from deepscope.spec import (
    SPEC_FILE,
    ModelSpec,
    check_model_name,
    check_weights,
    package_files,
    read_spec,
)
from deepscope.zoo.registry import builtin_names, resolve_model

MAX_UNPACKED_BYTES = 2 << 30  # a zip that inflates beyond 2 GiB is refused
FORMATS = ("deepscope", "bioimageio")


def _unzip(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest``, refusing paths that leave it, links and zip bombs."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise ModelError(f"{archive} unpacks to more than 2 GiB; refusing to import it")
            for m in members:
                target = (dest / m.filename).resolve()
                if not target.is_relative_to(dest.resolve()) or (m.external_attr >> 28) == 0xA:
                    raise ModelError(
                        f"{archive} holds '{m.filename}', which points outside the package; "
                        "refusing to import it"
                    )
            dest.mkdir(parents=True, exist_ok=True)  # an empty zip unpacks to nothing
            zf.extractall(dest)
    except zipfile.BadZipFile:
        raise ModelError(f"{archive} is not a valid zip file (damaged or truncated?)") from None


def _package_root(folder: Path) -> Path:
    """The folder holding ``model.json`` or a bioimage.io ``rdf.yaml`` (a zip may wrap the
    package in one folder; macOS adds a ``__MACOSX`` folder of its own beside it)."""
    from deepscope.zoo.bioimageio import is_bioimageio

    if (folder / SPEC_FILE).is_file() or is_bioimageio(folder):
        return folder
    inner = [p for p in folder.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    if len(inner) == 1 and ((inner[0] / SPEC_FILE).is_file() or is_bioimageio(inner[0])):
        return inner[0]
    return folder


def check_package(folder: Path) -> tuple[ModelSpec, list[str]]:
    """Read and verify a deepscope package (schema, version, weights' sha256, no links
    among its files); its spec and the names of its files
    (:func:`~deepscope.spec.package_files`)."""
    spec = read_spec(folder)
    names = package_files(folder, spec)
    links = [name for name in names if (folder / name).is_symlink()]
    if links:
        raise ModelError(
            f"'{folder / links[0]}' is a link; a package holds its own files, so refusing it "
            "(copy the file it points to into the package instead)"
        )
    check_weights(folder, spec)
    return spec, names


def _copy_files(folder: Path, names: list[str], dest: Path) -> None:
    dest.mkdir(parents=True)
    for name in names:
        shutil.copyfile(folder / name, dest / name)


def import_model(source: str | Path, name: str | None = None, replace: bool = False) -> Path:
    """Copy a model into the user's library after checking it; returns its new folder.

    ``source``: a deepscope package folder or its zip, or a bioimage.io model (``rdf.yaml``,
    its folder or zip). ``name`` renames it; ``replace`` overwrites a library model of the
    same name (built-in names are never shadowed).
    """
    from deepscope.zoo.bioimageio import RDF_FILE, is_bioimageio, package_from_bioimageio

    source = Path(source)
    if not source.exists():
        raise ModelError(f"'{source}' does not exist; give a model folder, zip or rdf.yaml")
    if name is not None:
        check_model_name(name)
    library = user_library()
    library.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".import.", dir=library))
    try:
        if source.is_file() and zipfile.is_zipfile(source):
            _unzip(source, work / "unpacked")
            root = _package_root(work / "unpacked")
        elif source.is_file() and source.suffix.lower() == ".zip":
            raise ModelError(
                f"'{source}' is not a readable zip file (damaged, truncated or empty?); "
                "export or download it again"
            )
        elif source.is_file() and (
            source.name in (SPEC_FILE, RDF_FILE) or source.name.endswith(".bioimageio.yaml")
        ):
            root = source.parent  # a package's description file stands for its folder
        else:
            root = source
        if is_bioimageio(root):  # our own export too: only its deepscope files are kept
            root = package_from_bioimageio(root, work / "converted")
        elif not (root / SPEC_FILE).is_file():
            raise ModelError(
                f"'{source}' is neither a deepscope model package (no {SPEC_FILE}) nor a "
                "bioimage.io model (no rdf.yaml)"
            )
        spec, files = check_package(root)
        package_name = spec.name
        final = name or package_name
        if final in builtin_names():
            advice = "choose another --name" if name else "import it with --name OTHER_NAME"
            raise ModelError(f"'{final}' is the name of a built-in model; {advice}")
        target = library / final
        if (target / "checkpoints").is_dir() and not (target / SPEC_FILE).is_file():
            raise ModelError(
                f"your library holds an interrupted training '{final}'; resume it, discard "
                f"it (deepscope models remove {final}) or pass --name NEW"
            )
        if target.exists() and not (target / SPEC_FILE).is_file():
            raise ModelError(
                f"your library holds a folder '{target}' that is not a model package (no "
                f"{SPEC_FILE}); move it away, or pass --name NEW"
            )
        if target.exists() and not replace:
            raise ModelError(
                f"your library already has a model '{final}'; pass --name NEW or --replace"
            )
        staged = work / "staged"
        _copy_files(root, files, staged)  # the package's files only, not the whole folder
        if final != package_name:
            from deepscope.spec import write_spec

            write_spec(staged, spec.model_copy(update={"name": final}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
        return target
    except DeepscopeError as err:  # name the user's file, not our scratch copy of it
        text = str(err)
        for scratch in (work / "unpacked", work / "converted"):
            text = text.replace(f"{scratch}{os.sep}", f"{source.name}: ")
            text = text.replace(str(scratch), source.name)
        if text == str(err):
            raise
        raise type(err)(text) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_model(name: str, out: str | Path, format: str = "deepscope") -> Path:
    """Write a model for sharing: ``deepscope`` = the package as a zip (or a folder when
    ``out`` does not end in ``.zip``); ``bioimageio`` = a bioimage.io model package."""
    if format not in FORMATS:
        raise ModelError(f"format must be one of {', '.join(FORMATS)}, got '{format}'")
    folder, _ = resolve_model(name)
    _, files = check_package(folder)
    out = Path(out)
    if out.exists():
        raise ModelError(f"'{out}' exists; choose another --out")
    check_output_file(out, "--out")  # its folder can be made and written, before any work
    if format == "bioimageio":
        from deepscope.zoo.bioimageio import export_bioimageio

        return export_bioimageio(folder, out)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".zip":
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for item in sorted(files):
                zf.write(folder / item, item)
        os.replace(tmp, out)
        return out
    shutil.rmtree(tmp, ignore_errors=True)
    _copy_files(folder, files, tmp)  # as the zip holds them: no checkpoints (pickles)
    os.replace(tmp, out)
    return out
