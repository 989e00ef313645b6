"""The explore page: novelty against negative controls, ranking, maps, galleries, errors."""

import re

import numpy as np
import pytest

from deepscope.errors import ConfigError, InputError
from deepscope.explore import analyse, explore, novelty_scores, standardise
from deepscope.io.feature_hdf import ObjectFeatures, write_feature_hdf

CONTROL, SAME, SHIFTED = "plate1/A01/1", "plate1/B01/1", "plate1/C01/1"


def synthetic_screen(
    per_position=(120, 120, 120), n_features=10, shift=6.0, controls=True, seed=0
) -> ObjectFeatures:
    """Three positions: a control, a treatment drawn from the control's distribution and
    a treatment whose features are all shifted by ``shift`` standard deviations."""
    rng = np.random.default_rng(seed)
    names = [CONTROL, SAME, SHIFTED][: len(per_position)]
    rows, positions = [], []
    for name, count in zip(names, per_position):
        features = rng.normal(size=(count, n_features))
        if name == SHIFTED:
            features += shift
        rows.append(features)
        positions += [name] * count
    n = len(positions)
    wells = [p.split("/")[1] for p in positions]
    yy, xx = np.mgrid[:12, :12]
    blob = 1000 * np.exp(-((yy - 5.5) ** 2 + (xx - 5.5) ** 2) / 8)
    gallery = np.stack(
        [np.stack([blob * rng.uniform(0.5, 2), blob[::-1] + 200]) for _ in range(n)]
    ).astype(np.uint16)
    circle = np.stack(
        [6 + 3 * np.cos(np.linspace(0, 6.3, 12)), 6 + 3 * np.sin(np.linspace(0, 6.3, 12))], axis=1
    )
    return ObjectFeatures(
        features=np.concatenate(rows).astype(np.float32),
        feature_names=[f"ae_{k}" for k in range(n_features)],
        labels=np.arange(1, n + 1),
        centers=rng.integers(10, 200, (n, 2)),
        bboxes=np.tile([10, 22, 30, 42], (n, 1)),
        gallery=gallery,
        contours=[circle] * n,
        channel_names=["dna", "tubulin"],
        positions=positions,
        plates=["plate1"] * n,
        wells=wells,
        sites=["1"] * n,
        genes=["scrambled" if w == "A01" else f"gene<{w}>" for w in wells],
        groups=["control" if w == "A01" else "target" for w in wells],
        is_control=np.array([w == "A01" and controls for w in wells]),
        angle=np.zeros(n),
        eccentricity=np.zeros(n),
        area=np.full(n, 100.0),
    )


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore")
    path = write_feature_hdf(folder / "features.hdf", synthetic_screen())
    events = []
    result = explore(
        path,
        folder / "pages" / "explore.html",
        method="none",
        n_clusters=4,
        max_gallery=6,
        progress=events.append,
    )
    return folder, result, events


def test_shifted_position_is_ranked_first(screen):
    _, result, _ = screen
    ranking = {row["position"]: row for row in result["positions"]}

    assert result["positions"][0]["position"] == SHIFTED
    assert ranking[SHIFTED]["fraction_novel"] > 0.9
    assert ranking[SAME]["fraction_novel"] < 0.25  # about 5 % expected
    assert ranking[SHIFTED]["fraction_novel"] - ranking[SAME]["fraction_novel"] > 0.6
    assert ranking[SHIFTED]["mean_novelty"] > ranking[SAME]["mean_novelty"]
    assert [row["rank"] for row in result["positions"]] == [1, 2, 3]
    assert ranking[CONTROL]["is_control"] and ranking[CONTROL]["n_objects"] == 120
    assert result["most_novel"][0]["position"] == SHIFTED


def test_result_counts_objects_positions_and_controls(screen):
    _, result, events = screen

    assert (result["n_objects"], result["n_positions"], result["n_controls"]) == (360, 3, 120)
    assert result["reference"] == "controls"
    assert (result["n_fit"], result["n_held_out"]) == (60, 60)  # half the controls held out
    assert result["n_tsne"] == 0
    assert result["n_clusters"] == 4
    assert sum(row["n_objects"] for row in result["clusters"]) == 360
    assert events[-1].done == events[-1].total and events[-1].stage == "explore"


def test_page_is_one_self_contained_file(screen):
    folder, result, _ = screen
    page = (folder / "pages" / "explore.html").read_text(encoding="utf-8")

    assert result["html"] == str(folder / "pages" / "explore.html")
    assert [p.name for p in (folder / "pages").iterdir()] == ["explore.html"]
    assert '<img src="data:image/png;base64,' in page
    assert not re.search(r"(src|href)=['\"]?https?://", page)
    assert "http://" not in page and "https://" not in page
    for name in (CONTROL, SAME, SHIFTED):
        assert name in page
    assert "gene&lt;C01&gt;" in page  # text from the file is escaped
    assert page.count("data:image/png;base64,") == 1 + 4 + 1  # PCA, 4 clusters, most novel
    assert "No t-SNE map" in page


def test_novelty_of_controls_is_calibrated():
    """About 5 % of unseen cells like the controls score above the threshold."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1400, 8))
    reference = np.zeros(1400, bool)
    reference[:400] = True

    scaled = standardise(features, reference)
    novelty = novelty_scores(scaled, reference, seed=0)

    assert novelty.n_fit == novelty.n_held_out == 200
    assert 0.02 < novelty.novel[400:].mean() < 0.1


def test_far_positions_whose_scores_level_off_are_ordered_by_distance():
    """Far from the controls every SVM score is the same; the distance still orders them."""
    table = synthetic_screen((80, 80, 80))
    farther = np.array([p == SAME for p in table.positions])
    table.features[farther] += 12.0  # SAME now lies twice as far as SHIFTED

    exploration = analyse(table, n_clusters=2, method="none")

    first, second, third = exploration.positions
    assert (first["position"], second["position"], third["position"]) == (SAME, SHIFTED, CONTROL)
    assert first["fraction_novel"] == second["fraction_novel"] == 1.0
    assert first["mean_novelty"] == pytest.approx(second["mean_novelty"])  # levelled off
    assert first["mean_distance"] > 1.5 * second["mean_distance"]


def test_tsne_map_on_a_small_file(tmp_path):
    path = write_feature_hdf(tmp_path / "small.hdf", synthetic_screen((20, 20, 20), 6))

    result = explore(path, tmp_path / "small.html", n_clusters=3, max_gallery=0)

    page = (tmp_path / "small.html").read_text(encoding="utf-8")
    assert result["n_tsne"] == 60
    assert "t-SNE maps" in page and "subsample" not in page
    assert result["positions"][0]["position"] == SHIFTED


def test_without_controls_novelty_is_relative_to_all_objects(tmp_path):
    path = write_feature_hdf(tmp_path / "f.hdf", synthetic_screen((40, 40), controls=False))

    result = explore(path, tmp_path / "f.html", method="none", max_gallery=0)

    page = (tmp_path / "f.html").read_text(encoding="utf-8")
    assert result["n_controls"] == 0 and result["reference"] == "all objects"
    assert "marks no object as a negative control" in page
    assert "data:image/png;base64," in page  # the maps are still drawn


def test_too_few_objects(tmp_path):
    path = write_feature_hdf(tmp_path / "two.hdf", synthetic_screen((1, 1)))

    with pytest.raises(InputError, match=r"holds 2 object.*at least 3"):
        explore(path, tmp_path / "two.html")
    assert not (tmp_path / "two.html").exists()
    with pytest.raises(InputError, match=r"the table holds 2 object"):
        analyse(synthetic_screen((1, 1)))


def test_not_a_features_file(tmp_path):
    path = tmp_path / "image.hdf"
    path.write_bytes(b"\x89PNG not HDF5 at all")

    with pytest.raises(InputError, match=r"cannot open .* as HDF5"):
        explore(path, tmp_path / "page.html")


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"ending in .html"):
        explore(tmp_path / "f.hdf", tmp_path / "page.png")
    with pytest.raises(ConfigError, match="UMAP is not installed"):
        explore(tmp_path / "f.hdf", tmp_path / "page.html", method="umap")
