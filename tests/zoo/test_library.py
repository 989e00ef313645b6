"""The model library: listing with filters, favourites, removing, importing and exporting."""

import json
import shutil
import zipfile

import pytest

from deepscope.errors import InputError, ModelError
from deepscope.nets import UNetConfig, build_unet
from deepscope.spec import ModelSpec, Tags, read_spec, save_package
from deepscope.zoo import (
    export_model,
    favourites,
    import_model,
    list_models,
    load_model,
    remove_model,
    set_favourite,
)

FIELDS = {
    "name", "version", "task", "architecture", "domain", "dimensionality", "channels",
    "pixel_size", "description", "training_data", "training_settings", "validation",
    "licence", "authors", "created", "source", "favourite",
}  # fmt: skip


def make_package(folder, name="cells", domain="brightfield cells"):
    config = UNetConfig(depth=1, base_filters=2, out_channels=3)
    spec = ModelSpec(name=name, task="semantic", network=config, tags=Tags(domain=domain))
    return save_package(folder, spec, build_unet(config).state_dict())


def test_every_builtin_model_is_listed_with_its_card(home):
    rows = {r["name"]: r for r in list_models()}
    segmenters = {"unet-nuclei-fluo", "stardist-nuclei-fluo", "stardist-nuclei-3d"}
    restorers = {"care-fmd-confocal", "n2v-fmd-confocal"}
    classifiers = {"mitosis-phase-classifier"}
    assert segmenters | restorers | classifiers <= set(rows)
    for name, row in rows.items():
        assert FIELDS <= set(row)
        assert row["source"] == "builtin" and row["favourite"] is False
        score = "psnr" if name in restorers else "macro_f1" if name in classifiers else "ap@0.5"
        assert score in row["validation"]
        assert row["training_data"]["n_train"] >= 2
    assert rows["stardist-nuclei-fluo"]["validation"]["ap@0.5"] > 0.75
    assert rows["stardist-nuclei-3d"]["dimensionality"] == "3d"
    assert rows["mitosis-phase-classifier"]["architecture"] == "cnn"


def test_filters_select_by_task_architecture_domain_and_source(home):
    make_package(home / "models" / "cells")
    assert [r["name"] for r in list_models(task="stardist", domain="nuclei")] == [
        "stardist-nuclei-3d",
        "stardist-nuclei-fluo",
    ]
    assert {r["name"] for r in list_models(architecture="unet")} == {
        "unet-nuclei-fluo",
        "care-fmd-confocal",
        "n2v-fmd-confocal",
        "cells",
    }
    assert [r["name"] for r in list_models(task="n2v")] == ["n2v-fmd-confocal"]
    assert {r["name"] for r in list_models(domain="denoising")} == {
        "care-fmd-confocal",
        "n2v-fmd-confocal",
    }
    assert [r["name"] for r in list_models(domain="Brightfield")] == ["cells"]
    assert [r["name"] for r in list_models(source="user")] == ["cells"]
    assert "cells" not in {r["name"] for r in list_models(source="builtin")}


def test_favourites_are_remembered_and_filterable(home):
    make_package(home / "models" / "cells")
    set_favourite("cells")
    set_favourite("unet-nuclei-fluo")
    assert favourites() == ["cells", "unet-nuclei-fluo"]
    assert {r["name"] for r in list_models(favourites_only=True)} == set(favourites())
    set_favourite("cells", False)
    assert favourites() == ["unet-nuclei-fluo"]
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        set_favourite("nope")


def test_removing_deletes_user_models_but_never_builtins(home):
    make_package(home / "models" / "cells")
    set_favourite("cells")
    remove_model("cells")
    assert not (home / "models" / "cells").exists() and favourites() == []
    with pytest.raises(ModelError, match="built-in model and cannot be removed"):
        remove_model("unet-nuclei-fluo")
    with pytest.raises(ModelError, match="no model 'cells' in your library"):
        remove_model("cells")


def test_an_interrupted_training_in_the_library_can_be_discarded(home, tiny_settings):
    from deepscope.errors import TrainingInterrupted
    from deepscope.train.config import make_train_config
    from deepscope.train.trainer import train

    def stop(event):
        if event.stage == "train" and event.done == 2:
            raise KeyboardInterrupt

    settings = make_train_config({**tiny_settings, "out": None, "name": "half-done"})
    with pytest.raises(TrainingInterrupted):
        train(settings, progress=stop)
    assert (home / "models" / "half-done" / "checkpoints").is_dir()
    remove_model("half-done")
    assert not (home / "models" / "half-done").exists()
    train(settings)  # the name is free again


def test_zip_export_and_import_round_trip(home, tmp_path):
    archive = export_model("unet-nuclei-fluo", tmp_path / "unet.zip")
    folder = import_model(archive, name="my-unet")
    assert folder == home / "models" / "my-unet"
    assert read_spec(folder).name == "my-unet"
    assert load_model("my-unet", device="cpu").source == "user"
    with pytest.raises(ModelError, match="already has a model 'my-unet'"):
        import_model(archive, name="my-unet")
    import_model(archive, name="my-unet", replace=True)


@pytest.mark.parametrize("name", ["../../victim", ".", "a/b", "bad name!", ".hidden"])
def test_a_name_that_is_not_a_plain_folder_name_is_refused_before_anything_is_touched(
    home, tmp_path, name
):
    folder = make_package(home / "models" / "cells")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    with pytest.raises(ModelError, match="cannot be a model name"):
        import_model(folder, name=name, replace=True)
    with pytest.raises(ModelError, match="cannot be a model name"):
        remove_model(name)
    assert (victim / "keep.txt").read_text() == "precious"
    assert (home / "models" / "cells" / "model.json").is_file()


def test_a_package_whose_own_name_is_a_path_is_refused(home, tmp_path):
    folder = make_package(tmp_path / "evil")
    spec = json.loads((folder / "model.json").read_text())
    spec["name"] = "../evil"
    (folder / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ModelError, match="invalid at 'name'"):
        import_model(folder)
    assert not (home / "evil").exists()


def test_export_to_a_place_that_cannot_be_written_says_so(home, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="cannot write --out"):
        export_model("unet-nuclei-fluo", tmp_path / "afile" / "m.zip")
    with pytest.raises(ModelError, match="exists; choose another --out"):
        export_model("unet-nuclei-fluo", tmp_path)
    (tmp_path / "precious.zip").write_bytes(b"someone's work")
    with pytest.raises(ModelError, match="exists; choose another --out"):
        export_model("unet-nuclei-fluo", tmp_path / "precious.zip")
    assert (tmp_path / "precious.zip").read_bytes() == b"someone's work"


def test_a_truncated_zip_is_called_damaged_not_a_non_model(home, tmp_path):
    whole = export_model("unet-nuclei-fluo", tmp_path / "m.zip")
    (tmp_path / "cut.zip").write_bytes(whole.read_bytes()[:3000])
    with pytest.raises(ModelError, match=r"not a readable zip file .*damaged, truncated"):
        import_model(tmp_path / "cut.zip", name="cut")


def test_importing_a_folder_under_a_builtin_name_is_refused(home, tmp_path):
    export_model("unet-nuclei-fluo", tmp_path / "copy")
    with pytest.raises(ModelError, match="name of a built-in model"):
        import_model(tmp_path / "copy")


def test_tampered_package_is_refused_before_it_reaches_the_library(home, tmp_path):
    folder = make_package(tmp_path / "cells")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-3] ^= 0x01
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        import_model(folder)
    assert list_models(source="user") == []


def test_a_tampered_zip_is_refused_naming_the_zip_not_a_scratch_folder(home, tmp_path):
    folder = make_package(tmp_path / "cells")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-3] ^= 0x01
    (folder / "weights.safetensors").write_bytes(bytes(data))
    shutil.make_archive(str(tmp_path / "cells"), "zip", folder)
    with pytest.raises(ModelError, match=r"^cells\.zip: weights\.safetensors does not match"):
        import_model(tmp_path / "cells.zip")


def test_zip_that_escapes_its_folder_is_refused(home, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("model.json", json.dumps({"name": "x"}))
        zf.writestr("../../outside.txt", "gotcha")
    with pytest.raises(ModelError, match="outside the package"):
        import_model(evil)
    assert not (home / "outside.txt").exists()


def test_files_that_are_not_models_get_a_clear_error(home, tmp_path):
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable zip file"):
        import_model(tmp_path / "notes.zip")
    with pytest.raises(ModelError, match="does not exist"):
        import_model(tmp_path / "missing")


@pytest.mark.parametrize("content", [b"{", b'{"name": "\xff"}', b'{"format_version": -3}'])
def test_damaged_user_package_is_skipped_with_a_warning(home, content):
    folder = make_package(home / "models" / "cells")
    (folder / "model.json").write_bytes(content)
    with pytest.warns(UserWarning, match="damaged model package"):
        names = [r["name"] for r in list_models()]
    assert "cells" not in names


@pytest.mark.parametrize("content", ["123", "null", '{"a": 1}'])
def test_a_damaged_favourites_file_is_named_in_one_line(home, content):
    (home / "favourites.json").write_text(content)
    with pytest.raises(ModelError, match=r"favourites\.json is damaged; delete it"):
        favourites()


def test_favourites_go_by_name_whatever_folders_the_current_directory_holds(
    home, tmp_path, monkeypatch
):
    from deepscope.zoo.registry import BUILTIN_DIR

    make_package(home / "models" / "cells")
    export_model("cells", tmp_path / "cells")  # a folder named like the model, here
    monkeypatch.chdir(tmp_path)

    set_favourite("cells")
    set_favourite(BUILTIN_DIR / "unet-nuclei-fluo")  # a built-in given by its folder
    assert favourites() == ["cells", "unet-nuclei-fluo"]
    remove_model("cells")
    assert favourites() == ["unet-nuclei-fluo"]


def test_a_zip_made_by_macos_finder_is_imported(home, tmp_path):
    folder = make_package(tmp_path / "cells")
    with zipfile.ZipFile(tmp_path / "cells.zip", "w") as zf:
        for item in folder.iterdir():
            zf.write(item, f"cells/{item.name}")
        zf.writestr("__MACOSX/cells/._model.json", b"resource fork")
    assert import_model(tmp_path / "cells.zip").name == "cells"


def test_training_writes_into_the_library_by_default(home, tiny_settings):
    from deepscope.train.config import make_train_config
    from deepscope.train.trainer import train

    settings = {**tiny_settings, "out": None, "epochs": 1}
    folder = train(make_train_config(settings))
    assert folder == home / "models" / "tiny"
    assert [r["name"] for r in list_models(source="user")] == ["tiny"]


def test_import_and_export_carry_the_package_files_only(home, tmp_path):
    folder = make_package(tmp_path / "downloads")  # a folder that holds other things too
    (folder / "private_notes.txt").write_text("not for sharing")
    (folder / "photos").mkdir()

    imported = import_model(folder / "model.json")
    archive = export_model("cells", tmp_path / "cells.ZIP")

    assert sorted(p.name for p in imported.iterdir()) == ["model.json", "weights.safetensors"]
    assert zipfile.is_zipfile(archive)
    assert sorted(zipfile.ZipFile(archive).namelist()) == ["model.json", "weights.safetensors"]


def test_a_package_whose_files_are_links_is_refused(home, tmp_path):
    folder = make_package(tmp_path / "linked")
    real = tmp_path / "elsewhere.safetensors"
    (folder / "weights.safetensors").rename(real)
    (folder / "weights.safetensors").symlink_to(real)
    with pytest.raises(ModelError, match="is a link"):
        import_model(folder)
    assert not (home / "models" / "cells").exists()


def test_a_network_file_named_outside_the_package_is_refused(tmp_path):
    from pydantic import ValidationError

    from deepscope.spec import ExternalNetwork

    for file in ("/etc/passwd", "../net.onnx", "sub/net.onnx"):
        with pytest.raises(ValidationError):
            ExternalNetwork(format="onnx", file=file, sha256="0" * 64)
    assert ExternalNetwork(format="onnx", file="weights.onnx", sha256="0" * 64).file


def test_a_package_folder_copied_under_another_name_by_hand_is_named_not_offered(home):
    make_package(home / "models" / "cells")
    shutil.copytree(home / "models" / "cells", home / "models" / "cells (copy)")
    with pytest.warns(UserWarning, match=r"skipped '.*cells \(copy\)': its name cannot name"):
        names = [r["name"] for r in list_models(source="user")]
    assert names == ["cells"]


def test_a_library_that_is_a_file_is_named_not_listed_as_empty(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path / "not-a-folder"))
    with pytest.raises(ModelError, match=r"a file is in the way .*DEEPSCOPE_HOME"):
        list_models(source="user")


def test_importing_over_a_library_folder_that_is_not_a_model_says_what_it_is(home, tmp_path):
    folder = make_package(tmp_path / "cells")
    (home / "models" / "cells").mkdir(parents=True)
    with pytest.raises(ModelError, match=r"a folder .* that is not a model package"):
        import_model(folder)
    (home / "models" / "cells" / "checkpoints").mkdir()
    with pytest.raises(ModelError, match=r"interrupted training 'cells'.*models remove cells"):
        import_model(folder)
