"""The tutorial scripts of docs/tutorials run, save their figure and show what they claim."""

import importlib.util
from pathlib import Path

import pytest
import torch

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"


def run_tutorial(name: str, out_dir: Path) -> dict:
    """Import docs/tutorials/<name>.py by path and call its main(out_dir)."""
    threads = torch.get_num_threads()  # the scripts set 1 thread; give the other tests theirs back
    try:
        spec = importlib.util.spec_from_file_location(f"tutorial_{name}", TUTORIALS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        results = module.main(out_dir)
    finally:
        torch.set_num_threads(threads)
    assert (out_dir / f"{name}.png").stat().st_size > 10_000  # a real figure, not an empty file
    return results


def test_single_neuron_separates_two_clouds(tmp_path):
    results = run_tutorial("01_single_neuron", tmp_path)
    assert results["accuracy"] > 0.9
    assert results["final_loss"] < 0.5 * results["first_loss"]


def test_mlp_solves_spirals_where_a_neuron_cannot(tmp_path):
    results = run_tutorial("02_multilayer_perceptron", tmp_path)
    assert results["neuron_test_accuracy"] < 0.65  # no straight line separates the spirals
    assert results["mlp_test_accuracy"] > 0.9
    assert results["mlp_test_accuracy"] > results["neuron_test_accuracy"] + 0.25


def test_cnn_classifies_mitotic_phases(tmp_path, shared_data):
    results = run_tutorial("03_cnn_on_crops", tmp_path)
    assert results["n_train"] + results["n_val"] > 500  # all 8 classes were read
    # 8 classes; always guessing the commonest one gives ~0.22.
    assert results["val_accuracy"] > 0.5
    assert results["val_accuracy"] > results["majority_class_accuracy"] + 0.25


def test_overfitting_is_visible_and_cured(tmp_path, shared_data):
    results = run_tutorial("04_overfitting", tmp_path)
    # The large model memorises its 96 training crops ...
    assert results["overfit_final_train_loss"] < 0.05
    # ... while its validation loss climbs well above its own minimum.
    assert results["overfit_kept_val_loss"] > 1.15 * results["overfit_best_val_loss"]
    # The cures reach a clearly lower validation loss, and keep that epoch's weights.
    assert results["cured_best_val_loss"] < 0.9 * results["overfit_best_val_loss"]
    assert results["cured_kept_val_loss"] == pytest.approx(results["cured_best_val_loss"])
    assert results["cured_val_accuracy"] >= results["overfit_val_accuracy"]
