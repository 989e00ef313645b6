"""Crop classification: data helpers, the task, scores, the network and its ONNX export."""

import numpy as np
import pytest
import torch

from deepscope.data.augment import Augmentation
from deepscope.data.crops import (
    CropSampler,
    class_folders,
    fit_crop,
    object_crops,
    random_shift,
    stratified_split,
)
from deepscope.errors import InputError
from deepscope.io import write_image
from deepscope.metrics.classification import classification_scores, plot_confusion
from deepscope.nets import ClassifierConfig, build_network
from deepscope.tasks import get_task


def test_fit_crop_centres_larger_crops_and_pads_smaller_ones():
    big = np.arange(2 * 10 * 10, dtype=np.float32).reshape(2, 10, 10)
    assert np.array_equal(fit_crop(big, 6), big[:, 2:8, 2:8])
    small = np.ones((1, 3, 5), np.float32)
    out = fit_crop(small, 7)
    assert out.shape == (1, 7, 7)
    assert out.sum() == 15 and out[0, 2:5, 1:6].all()


def test_object_crops_are_centred_on_each_object_and_padded_at_edges():
    labels = np.zeros((40, 40), np.int32)
    labels[10:13, 20:23] = 4  # centre (11, 21)
    labels[0:2, 0:2] = 9  # corner object: its window reaches over the edge
    image = np.zeros((1, 40, 40), np.float32)
    image[0, 11, 21] = 5.0
    crops, ids = object_crops(image, labels, 8)
    assert list(ids) == [4, 9]
    assert crops.shape == (2, 1, 8, 8)
    assert crops[0, 0, 4, 4] == 5.0  # the centre pixel lands at the window centre
    with pytest.raises(InputError, match="differ in size"):
        object_crops(image, labels[:10], 8)


def test_stratified_split_holds_out_every_class_reproducibly():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2)
    train, val = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.bincount(labels[val])) == [1, 2, 10]
    assert set(train) | set(val) == set(range(len(labels))) and not set(train) & set(val)
    again_train, again_val = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)


def test_random_shift_moves_content_and_fills_with_zeros():
    crop = np.zeros((1, 9, 9), np.float32)
    crop[0, 4, 4] = 1
    shifted = random_shift(crop, 3, np.random.default_rng(0))
    assert shifted.sum() == 1 and shifted[0, 4, 4] in (0, 1)
    assert random_shift(crop, 0, np.random.default_rng(0)) is crop


def test_balanced_sampler_draws_minority_classes_as_often_as_majority():
    crops = np.zeros((100, 1, 8, 8), np.float32)
    labels = np.array([0] * 95 + [1] * 5)
    sampler = CropSampler(crops, labels, 400, Augmentation(), 2, True, np.random.default_rng(0))
    images, classes = sampler.batch()
    assert images.shape == (400, 1, 8, 8)
    assert 0.4 < classes.mean() < 0.6
    uniform = CropSampler(crops, labels, 400, None, 0, False, np.random.default_rng(0))
    assert uniform.batch()[1].mean() < 0.15


def test_class_folders_lists_classes_and_rejects_a_flat_folder(tmp_path):
    for cls, n in (("mitosis", 2), ("interphase", 3)):
        for i in range(n):
            write_image(tmp_path / cls / f"c{i}.tif", np.zeros((8, 8), np.uint8))
    classes, items = class_folders(tmp_path)
    assert classes == ["interphase", "mitosis"]
    assert sorted(i for _, i in items) == [0, 0, 0, 1, 1]
    with pytest.raises(InputError, match="one sub-folder per class"):
        class_folders(tmp_path / "mitosis")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="contains no image files"):
        class_folders(tmp_path)


def test_scores_match_a_hand_counted_example(tmp_path):
    truth = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 1, 1]
    s = classification_scores(truth, pred, ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["precision/b"] == pytest.approx(2 / 4) and s["recall/b"] == 1.0
    assert s["recall/a"] == pytest.approx(2 / 3) and s["precision/a"] == 1.0
    assert s["f1/c"] == 0.0 and s["support/c"] == 1
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert plot_confusion(truth, pred, ["a", "b", "c"], tmp_path / "cm.png").stat().st_size > 0


def test_task_turns_logits_into_a_named_class_and_probabilities():
    task = get_task("classify", {"classes": ["inter", "meta", "telo"]})
    result = task.postprocess(np.array([0.0, 3.0, 1.0]))
    assert result.class_name == "meta" and int(result.classes) == 1
    assert result.probabilities.sum() == pytest.approx(1.0)
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    target = torch.tensor([0, 1])
    assert task.batch_metrics(logits, target) == {"accuracy": 0.5}
    assert task.loss(logits, target) > 0
    weighted = get_task(
        "classify", {"classes": ["a", "b", "c"], "balance": "weights", "class_weights": [1, 9, 1]}
    )
    assert weighted.loss(logits, target) > task.loss(logits, target)


def test_duplicate_class_names_are_refused():
    with pytest.raises(Exception, match="distinct"):
        get_task("classify", {"classes": ["a", "a"]})


def test_classifier_gives_one_logit_per_class_for_any_crop_size_and_exports_to_onnx():
    pytest.importorskip("onnxruntime")
    from deepscope.nets.onnx import export_onnx
    from deepscope.predict.backends import onnx_fn

    config = ClassifierConfig(in_channels=2, out_channels=5, depth=2, base_filters=4)
    net = build_network(config).eval()
    x = np.random.default_rng(0).normal(size=(3, 2, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert expected.shape == (3, 5)
    assert net(torch.zeros(1, 2, 48, 40)).shape == (1, 5)
    got = onnx_fn(export_onnx(net))(x)
    assert np.allclose(got, expected, atol=1e-4)
