"""The JSON API of ``deepscope serve``, driven in-process with FastAPI's test client."""

import csv
import io

import imageio.v3
import numpy as np
import pytest
from fastapi.testclient import TestClient

from deepscope.app import ServerSettings, create_app
from deepscope.errors import ConfigError
from deepscope.io import read_image, write_image


def test_health(client):
    assert client.get("/api/health").json()["status"] == "ok"


def test_models_are_the_library_listing(client):
    models = client.get("/api/models").json()
    names = {m["name"] for m in models}
    assert {"unet-nuclei-fluo", "stardist-nuclei-fluo", "flows-nuclei-fluo"} <= names
    for m in models:
        assert {"name", "task", "architecture", "domain", "source", "favourite"} <= set(m)
    stardist = client.get("/api/models", params={"task": "stardist"}).json()
    assert stardist and all(m["task"] == "stardist" for m in stardist)


def test_model_details_carry_loss_curves_and_favourites_persist(client):
    details = client.get("/api/models/unet-nuclei-fluo").json()
    assert details["history"] and {"epoch", "train_loss", "val_loss"} <= set(details["history"][0])
    client.post("/api/models/unet-nuclei-fluo/favourite", json={"favourite": True})
    favourites = client.get("/api/models", params={"favourites": True}).json()
    assert [m["name"] for m in favourites] == ["unet-nuclei-fluo"]


def test_an_unknown_model_is_not_found_and_a_form_naming_one_is_a_bad_request(client):
    answer = client.get("/api/models/no-such-model")
    assert answer.status_code == 404 and "no-such-model" in answer.json()["detail"]
    assert client.delete("/api/models/no-such-model").status_code == 404
    assert client.get("/api/models/no-such-model/export").status_code == 404
    form = client.post("/api/predict", data={"model": "no-such-model", "path": "plate/a.tif"})
    assert form.status_code == 400 and "unknown model" in form.json()["detail"]


def test_predict_preview_of_an_upload(client, data_root):
    image = (data_root / "plate" / "a.tif").read_bytes()
    answer = client.post(
        "/api/predict",
        data={"model": "unet-nuclei-fluo", "mode": "preview"},
        files={"file": ("a.tif", image, "image/tiff")},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["n_objects"] > 5
    labels_png = client.get(result["urls"]["labels"])
    assert labels_png.headers["content-type"] == "image/png"
    labels = client.get(result["downloads"]["a_labels.tif"])
    assert labels.status_code == 200
    found = read_image_bytes(labels.content)
    assert found.shape == (256, 256) and len(np.unique(found)) - 1 == result["n_objects"]


def read_image_bytes(content: bytes) -> np.ndarray:
    import tifffile

    return tifffile.imread(io.BytesIO(content))


def test_count_with_an_area_range_of_a_server_file(client, data_root):
    path = str(data_root / "plate" / "a.tif")
    everything = client.post(
        "/api/predict", data={"model": "unet-nuclei-fluo", "mode": "count", "path": path}
    ).json()
    large = client.post(
        "/api/predict",
        data={"model": "unet-nuclei-fluo", "mode": "count", "path": path, "ranges": "area=150:"},
    ).json()
    assert 0 < large["n_objects"] < everything["n_objects"]
    assert all(float(row["area"]) >= 150 for row in large["objects"])
    table = client.get(large["downloads"]["a_objects.csv"]).text
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == large["n_objects"] == large["summary"]["count"]


def test_a_corrupt_image_gets_a_clear_message_and_the_server_goes_on(client, settings):
    answer = client.post(
        "/api/predict",
        data={"model": "unet-nuclei-fluo"},
        files={"file": ("broken.tif", b"II*\x00 this is not a tiff", "image/tiff")},
    )
    assert answer.status_code == 400
    assert "'broken.tif'" in answer.json()["detail"]  # by its name, not its server folder
    assert str(settings.state_dir) not in answer.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_a_file_that_is_not_an_image_is_refused(client):
    answer = client.post(
        "/api/predict", data={"model": "unet-nuclei-fluo"}, files={"file": ("notes.txt", b"hi")}
    )
    assert answer.status_code == 400 and "not an image file" in answer.json()["detail"]


def test_paths_outside_the_data_roots_are_forbidden(client, data_root, tmp_path):
    secret = tmp_path / "secret.tif"
    secret.write_bytes((data_root / "plate" / "a.tif").read_bytes())
    (data_root / "link.tif").symlink_to(secret)
    for path in (str(secret), str(data_root / ".." / "secret.tif"), str(data_root / "link.tif")):
        answer = client.post("/api/predict", data={"model": "unet-nuclei-fluo", "path": path})
        assert answer.status_code == 403, path
    assert client.get("/api/files", params={"path": str(tmp_path)}).status_code == 403
    listing = client.get("/api/files", params={"path": str(data_root / "plate")}).json()
    assert listing["images"] == ["a.tif", "b.tif"]


def test_uploads_over_the_limit_are_refused(settings):
    small = settings.model_copy(update={"max_upload_mb": 0.01})
    with TestClient(create_app(small)) as client:
        answer = client.post(
            "/api/predict",
            data={"model": "unet-nuclei-fluo"},
            files={"file": ("big.tif", b"\0" * 20_000, "image/tiff")},
        )
    assert answer.status_code == 413


def test_images_that_decode_into_more_pixels_than_allowed_are_refused(settings, data_root):
    import imagecodecs

    small = settings.model_copy(update={"max_image_megapixels": 1})
    flat = imagecodecs.png_encode(np.zeros((2000, 1000), np.uint8))  # 2 MP in a few kB
    with TestClient(create_app(small)) as client:
        answer = client.post(
            "/api/predict",
            data={"model": "unet-nuclei-fluo"},
            files={"file": ("flat.png", flat, "image/png")},
        )
        assert answer.status_code == 413 and "2.00 million values" in answer.json()["detail"]
        fine = client.post(
            "/api/predict", data={"model": "unet-nuclei-fluo", "path": "plate/a.tif"}
        )
        assert fine.status_code == 200  # 256 x 256


def test_a_token_is_required_off_loopback(settings):
    with pytest.raises(ConfigError, match="--token"):
        create_app(settings.model_copy(update={"host": "0.0.0.0"}))


def test_with_a_token_every_request_needs_it(settings):
    guarded = settings.model_copy(update={"host": "0.0.0.0", "token": "s3cret"})
    with TestClient(create_app(guarded)) as client:
        assert client.get("/api/health").status_code == 401
        wrong = client.get("/api/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.get("/api/health", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        page = client.get("/models", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        client.post("/login", data={"token": "s3cret", "next": "/models"})
        assert client.get("/models").status_code == 200  # the session cookie lets it in
        assert "s3cret" not in str(client.cookies.values())


def test_pages_render(client):
    for page in ("/models", "/analyse", "/jobs", "/train?task=flows"):
        answer = client.get(page)
        assert answer.status_code == 200 and "<main>" in answer.text, page
    assert 'name="epochs"' in client.get("/train?task=semantic").text


def test_openapi_documents_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/models", "/api/predict", "/api/jobs", "/api/jobs/{job_id}"} <= set(
        paths
    )


def test_create_app_with_defaults_is_loopback_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSCOPE_HOME", str(tmp_path))
    app = create_app(ServerSettings(workers=False))
    assert app.title == "deepscope"


def test_export_import_and_remove_a_model(client):
    exported = client.get("/api/models/unet-nuclei-fluo/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    imported = client.post(
        "/api/models/import",
        data={"name": "my-unet"},
        files={"file": ("unet.zip", exported.content, "application/zip")},
    )
    assert imported.json() == {"name": "my-unet", "source": "user"}
    mine = client.get("/api/models", params={"source": "user"}).json()
    assert [m["name"] for m in mine] == ["my-unet"]
    assert client.delete("/api/models/unet-nuclei-fluo").status_code == 400  # built-in
    assert client.delete("/api/models/my-unet").json()["removed"]
    assert client.get("/api/models", params={"source": "user"}).json() == []


def test_a_removed_or_replaced_model_is_never_served_from_the_cache(client, data_root):
    image = (data_root / "plate" / "a.tif").read_bytes()

    def objects_found_by(model):
        answer = client.post(
            "/api/predict",
            data={"model": model, "mode": "preview"},
            files={"file": ("a.tif", image, "image/tiff")},
        )
        return answer.json().get("n_objects") if answer.status_code == 200 else answer.status_code

    found = []
    for builtin in ("unet-nuclei-fluo", "flows-nuclei-fluo"):
        client.post(
            "/api/models/import",
            data={"name": "mine", "replace": "true"},
            files={"file": ("m.zip", client.get(f"/api/models/{builtin}/export").content)},
        )
        found.append(objects_found_by("mine"))
        assert found[-1] == objects_found_by(builtin)
    assert found[0] != found[1]  # the replaced model was not served again
    assert client.delete("/api/models/mine").json()["removed"]
    assert objects_found_by("mine") in (400, 404)


def test_a_failed_export_leaves_nothing_behind(client, settings, monkeypatch):
    import deepscope.app.server as server
    from deepscope.errors import ModelError

    def fails_half_way(package, out, format):
        out.parent.mkdir(parents=True)  # as export_model does before writing
        raise ModelError("the network cannot be exported")

    monkeypatch.setattr(server, "export_model", fails_half_way)
    answer = client.get("/api/models/unet-nuclei-fluo/export")
    assert answer.status_code == 400 and "cannot be exported" in answer.json()["detail"]
    assert not any((settings.state_dir / "results").glob("export-*"))


def test_import_refuses_what_is_not_a_model_zip(client):
    not_zip = client.post("/api/models/import", files={"file": ("m.txt", b"hello")})
    assert not_zip.status_code == 400 and "model zip" in not_zip.json()["detail"]
    broken = client.post("/api/models/import", files={"file": ("m.zip", b"PK\x03\x04junk")})
    assert broken.status_code == 400 and "uploads" not in broken.json()["detail"]


def test_a_restoration_model_shows_input_and_output(client, data_root):
    answer = client.post(
        "/api/predict",
        data={"model": "n2v-fmd-confocal", "path": str(data_root / "plate" / "b.tif")},
    ).json()
    assert {"image", "output"} <= set(answer["urls"]) and "labels" not in answer["urls"]
    assert "b_pred.tif" in answer["downloads"]
    assert client.get(answer["urls"]["output"]).headers["content-type"] == "image/png"


def test_a_classifier_shows_the_class_of_an_uploaded_crop(client):
    crop = io.BytesIO()
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    imageio.v3.imwrite(crop, rgb, extension=".png")
    answer = client.post(
        "/api/predict",
        data={"model": "mitosis-phase-classifier"},
        files={"file": ("cell 7.png", crop.getvalue(), "image/png")},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    shown = result["summary"]
    probabilities = {k[5:]: float(v) for k, v in shown.items() if k.startswith("prob_")}
    assert shown["class"] == max(probabilities, key=probabilities.get) and len(probabilities) == 8
    (row,) = csv.DictReader(io.StringIO(client.get(result["downloads"]["predictions.csv"]).text))
    assert row["file"] == "cell_7.png"  # the name given, not the upload's path on the server


def test_analyse_says_what_to_do_with_a_time_series_before_any_work(client, data_root):
    write_image(data_root / "movie.tif", np.zeros((3, 64, 64), np.uint8), axes="TYX")
    answer = client.post(
        "/api/predict", data={"model": "unet-nuclei-fluo", "path": str(data_root / "movie.tif")}
    )
    assert answer.status_code == 400 and "time series (3 time points)" in answer.text
    assert "batch the folder as a job" in answer.text


def test_a_dataset_inside_an_hdf5_file_is_named_after_a_colon(client, data_root):
    import h5py

    plane = read_image(data_root / "plate" / "a.tif").data
    with h5py.File(data_root / "two.h5", "w") as fh:
        fh["raw"], fh["label"] = plane, np.zeros_like(plane)
    both = client.post("/api/predict", data={"model": "unet-nuclei-fluo", "path": "two.h5"})
    assert both.status_code == 400 and "two.h5:label" in both.text  # names the datasets
    raw = client.post("/api/predict", data={"model": "unet-nuclei-fluo", "path": "two.h5:raw"})
    assert raw.status_code == 200, raw.text
    assert raw.json()["n_objects"] > 5
    missing = client.post("/api/predict", data={"model": "unet-nuclei-fluo", "path": "no.tif"})
    assert missing.status_code == 400 and "does not exist" in missing.text


def test_a_zarr_store_is_listed_as_an_image_and_analysed(client, data_root):
    write_image(data_root / "scans" / "a.ome.zarr", read_image(data_root / "plate" / "a.tif").data)
    listing = client.get("/api/files", params={"path": str(data_root / "scans")}).json()
    assert listing["images"] == ["a.ome.zarr"] and listing["folders"] == []
    answer = client.post(
        "/api/predict", data={"model": "unet-nuclei-fluo", "path": "scans/a.ome.zarr"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["n_objects"] > 5


def test_a_model_is_named_never_given_as_a_path_on_the_server(client, tmp_path):
    from deepscope.zoo import export_model

    outside = export_model("unet-nuclei-fluo", tmp_path / "outside-model")
    image = {"path": "plate/a.tif"}
    for model in (str(outside), "/etc", "../models/x", "a" * 5000):
        answer = client.post("/api/predict", data={"model": model, **image})
        assert answer.status_code == 400, model
        assert "unknown model" in answer.json()["detail"] or "cannot be" in answer.json()["detail"]
    for params in ({"model": str(outside), "folder": "plate"}, {"model": 5, "folder": "plate"}):
        assert client.post("/api/jobs", json={"kind": "batch", "params": params}).status_code == 400
    settings = {"task": "semantic", "name": "t", "images": "plate", "masks": "plate",
                "init_from": str(outside)}  # fmt: skip
    answer = client.post("/api/jobs", json={"kind": "train", "params": {"settings": settings}})
    assert answer.status_code == 400
    assert client.get("/api/models/" + "a" * 5000).status_code == 404


def test_a_token_with_any_characters_is_refused_not_a_crash(settings):
    guarded = settings.model_copy(update={"host": "0.0.0.0", "token": "s3cret"})
    with TestClient(create_app(guarded)) as client:
        odd = client.get("/api/health", headers={"Authorization": b"Bearer s3cret\xc3\xa9"})
        assert odd.status_code == 401
        cookie = client.get("/api/health", headers={"Cookie": b"deepscope_session=\xc3\xa9"})
        assert cookie.status_code == 401


def test_job_parameters_are_checked_when_submitted(client, data_root, tmp_path):
    def submit(params):
        return client.post("/api/jobs", json={"kind": "batch", "params": params})

    good = {"model": "unet-nuclei-fluo", "folder": "plate"}
    assert submit({"model": "unet-nuclei-fluo"}).status_code == 400  # no folder: not the root
    assert submit({**good, "split": "no"}).status_code == 400  # "no" is not false
    assert submit({**good, "ranges": "area=1:2"}).status_code == 400
    assert submit({**good, "ranges": ["area=abc"]}).status_code == 400
    evaluate = {"kind": "evaluate", "params": {"model": "unet-nuclei-fluo", "images": "plate"}}
    assert client.post("/api/jobs", json=evaluate).status_code == 400  # no truth folder
    train = {"kind": "train", "params": {"settings": "x"}}
    assert client.post("/api/jobs", json=train).status_code == 400
    assert submit({**good, "folder": "no-such-folder"}).status_code == 400
    assert submit({**good, "ranges": ["nocol=1:2"]}).status_code == 400  # no such column
    missing_model = submit({"folder": "plate"})
    assert missing_model.status_code == 400 and "params.model is required" in missing_model.text
    builtin = {"task": "semantic", "name": "unet-nuclei-fluo", "images": "plate", "masks": "plate"}
    taken = client.post("/api/jobs", json={"kind": "train", "params": {"settings": builtin}})
    assert taken.status_code == 400 and "built-in" in taken.text
    assert client.get("/api/jobs").json() == []  # nothing reached the queue


def test_a_link_inside_a_folder_that_leads_out_of_the_roots_is_forbidden(
    client, data_root, tmp_path
):
    (tmp_path / "private.tif").write_bytes((data_root / "plate" / "a.tif").read_bytes())
    (data_root / "linked").mkdir()
    (data_root / "linked" / "private.tif").symlink_to(tmp_path / "private.tif")
    params = {"model": "unet-nuclei-fluo", "folder": "linked"}
    assert client.post("/api/jobs", json={"kind": "batch", "params": params}).status_code == 403


def test_odd_ids_paths_and_archives_are_client_errors(client, tmp_path):
    too_large = client.get("/api/jobs/99999999999999999999")
    assert too_large.status_code == 422 and too_large.json()["detail"].startswith("job_id: ")
    assert client.get("/api/files", params={"path": "a\x00b"}).status_code == 400
    assert client.get("/api/files", params={"path": "a" * 5000}).status_code == 400
    import zipfile

    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    with open(tmp_path / "empty.zip", "rb") as fh:
        answer = client.post("/api/models/import", files={"file": ("empty.zip", fh)})
    assert answer.status_code == 400


def test_one_channel_of_a_two_channel_image_is_counted(client, data_root):
    grey = read_image(data_root / "plate" / "a.tif").data
    write_image(data_root / "two" / "a.tif", np.stack([grey // 4, grey]), "CYX")
    path = str(data_root / "two" / "a.tif")
    plain = client.post(
        "/api/predict", data={"model": "unet-nuclei-fluo", "mode": "count",
                              "path": str(data_root / "plate" / "a.tif")},
    ).json()  # fmt: skip

    answer = client.post(
        "/api/predict",
        data={"model": "unet-nuclei-fluo", "mode": "count", "path": path, "channel": "1"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["n_objects"] == plain["n_objects"] > 0
    assert "mean_intensity_ch0" in answer.json()["columns"]
    refused = client.post("/api/predict", data={"model": "unet-nuclei-fluo", "path": path})
    assert refused.status_code == 400 and "expects 1 channel" in refused.json()["detail"]
