"""The training history CSV: written per epoch, read back as numbers."""

from deepscope.train.history import read_history, write_history


def test_history_round_trip_keeps_numbers_and_blanks(tmp_path):
    rows = [
        {"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "learning_rate": 1e-3, "seconds": 5},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "learning_rate": 5e-4},
    ]
    path = write_history(rows, tmp_path / "history.csv")
    read = read_history(path)
    assert [r["epoch"] for r in read] == [1.0, 2.0]
    assert read[1]["val_loss"] == 0.6 and read[1]["seconds"] is None


def test_a_missing_history_has_no_rows(tmp_path):
    assert read_history(tmp_path / "history.csv") == []
