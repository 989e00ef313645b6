"""What a biologist does in the web app, clicked through in Chromium."""

import csv
import io

from playwright.sync_api import expect


def test_load_a_built_in_model(server, page, screenshots):
    page.goto(f"{server}/models")
    page.click("#source-tabs button[data-source=builtin]")
    row = page.locator("#model-table tr[data-name='unet-nuclei-fluo']")
    row.click()
    expect(page.locator("#md-name")).to_contain_text("unet-nuclei-fluo")
    expect(page.locator("#md-validation")).to_contain_text("ap@0.5")
    page.screenshot(path=screenshots / "models.png")
    page.click("#md-use")
    expect(page).to_have_url(f"{server}/analyse?model=unet-nuclei-fluo")
    expect(page.locator("#model")).to_have_value("unet-nuclei-fluo")


def test_preview_then_count_with_an_area_range_and_download(server, page, sample, screenshots):
    page.goto(f"{server}/analyse?model=unet-nuclei-fluo")
    page.set_input_files("#file", str(sample))
    page.click("#run-preview")
    expect(page.locator("#n-objects")).to_contain_text("objects (preview)", timeout=60_000)
    preview = int(page.locator("#n-objects").inner_text().split()[0])
    assert preview > 20
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#hover")).not_to_be_empty()
    page.screenshot(path=screenshots / "analyse-preview.png")

    page.click("#add-range")
    page.fill(".range .r-min", "150")
    page.click("#run-count")
    expect(page.locator("#n-objects")).to_contain_text("objects (count)", timeout=60_000)
    counted = int(page.locator("#n-objects").inner_text().split()[0])
    assert 0 < counted < preview
    expect(page.locator("#objects tr")).to_have_count(counted + 1)  # header + one per object
    page.screenshot(path=screenshots / "analyse-count.png", full_page=True)

    with page.expect_download() as download:
        page.click("#downloads a[download='nuclei_fluo_objects.csv']")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == counted and all(float(r["area"]) >= 150 for r in rows)


def test_a_corrupt_upload_shows_a_message(server, page, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00not really a tiff")
    page.goto(f"{server}/analyse")
    page.set_input_files("#file", str(broken))
    page.click("#run-preview")
    expect(page.locator("#message")).to_contain_text("broken.tif")
    page.goto(f"{server}/models")  # and the server goes on
    expect(page.locator("#model-table tbody tr").first).to_be_visible()


def test_train_watch_the_curve_stop_and_resume(server, page, data_root, screenshots):
    page.goto(f"{server}/train?task=semantic")
    fields = {
        "name": "browser-unet",
        "images": str(data_root / "train/images"),
        "masks": str(data_root / "train/masks"),
        "val_images": str(data_root / "val/images"),
        "val_masks": str(data_root / "val/masks"),
        "network.depth": "2",
        "network.base_filters": "4",
        "patch_size": "32",
        "batch_size": "2",
        "epochs": "20",  # long enough (seconds) to be stopped while it runs
        "steps_per_epoch": "150",
        "val_patches": "2",
        "checkpoint_every": "10",
        "threads": "1",
    }
    for name, value in fields.items():
        page.fill(f"#train-form [name='{name}']", value)
    page.screenshot(path=screenshots / "train.png", full_page=True)
    page.click("#start-training")
    expect(page).to_have_url(f"{server}/jobs#1")
    progress = page.locator("#jd-progress")
    expect(progress).to_contain_text("train", timeout=120_000)
    curve = page.locator("#jd-curves")
    first = curve.evaluate("c => c.toDataURL()")
    page.wait_for_function(
        "first => document.querySelector('#jd-curves').toDataURL() !== first", arg=first
    )
    page.wait_for_function(  # a few dozen steps on the curve for the screenshot
        "() => parseInt(document.querySelector('#jd-progress').textContent.split(' ')[1]) >= 60"
    )
    page.screenshot(path=screenshots / "jobs-training.png")

    page.click("#jd-stop")
    expect(page.locator("#jd-status")).to_have_text("stopped", timeout=60_000)
    page.click("#jd-resume")
    expect(page.locator("#jd-status")).to_have_text("done", timeout=240_000)
    expect(page.locator("#job-table")).to_contain_text("done")
    page.goto(f"{server}/models")
    page.click("#source-tabs button[data-source=user]")
    expect(page.locator("#model-table tr[data-name='browser-unet']")).to_be_visible()


def test_restoration_input_and_output_side_by_side(server, page, sample, screenshots):
    page.goto(f"{server}/analyse?model=n2v-fmd-confocal")
    page.set_input_files("#file", str(sample))
    page.click("#run-preview")
    output = page.locator("#viewer-output")
    expect(output).to_be_visible(timeout=60_000)
    box = output.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#profile")).to_be_visible()
    expect(page.locator("#hover")).to_contain_text("(")
    page.screenshot(path=screenshots / "analyse-restoration.png")


def test_a_batch_with_split_ticked_and_no_range_is_a_count(server, page, data_root):
    page.goto(f"{server}/analyse?model=unet-nuclei-fluo")
    page.fill("#path", str(data_root / "plate" / "a.tif"))
    page.check("#split")
    page.click("#run-batch")
    page.wait_for_url(f"{server}/jobs#*")
    job_id = page.url.rsplit("#", 1)[1]
    params = page.request.get(f"{server}/api/jobs/{job_id}").json()["params"]
    assert params["mode"] == "count" and params["split"] is True  # it went as a preview
