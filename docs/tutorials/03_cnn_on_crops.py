"""Tutorial 3: a convolutional network sorts dividing cells into mitotic phases.

A convolutional neural network (CNN) slides small learned filters (3x3 pixels) over the image,
so the same edge or blob detector works anywhere in the crop; pooling halves the image size so
deeper layers see larger structures (whole chromosome sets, spindles). A final linear layer turns
these features into one score per class. The network learns from single-cell crops (red = H2B
chromatin, green = tubulin) in 8 classes, from interphase to apoptosis, and is judged on crops
it never saw during training (the validation set).
"""

import argparse
import re
import sys
from pathlib import Path

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")  # draw into files, no window needed
import matplotlib.pyplot as plt
import numpy as np
import torch

torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mitosis_crops"
CLASSES = ["inter", "pro", "prometa", "meta", "earlyana", "lateana", "telo", "apo"]


def load_crops(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """All crops as uint8 (N, 64, 64, 3) and their class numbers.

    Some cells were cropped twice, shifted by a pixel (same plate P, frame T, position X, Y in
    the file name); we keep one crop per cell, so no cell is in both training and validation.
    """
    images, labels, seen = [], [], []
    for label, name in enumerate(CLASSES):
        for file in sorted((folder / name).glob("*.png")):
            # File names look like P0037_T00020_X0517_Y0710__img.png: plate, frame, x, y.
            plate, frame, x, y = map(int, re.findall(r"\d+", file.name)[:4])
            if any(
                (plate, frame) == (p, f) and abs(x - u) <= 3 and abs(y - v) <= 3
                for p, f, u, v in seen
            ):
                continue  # the same cell again, shifted by a pixel or two
            seen.append((plate, frame, x, y))
            images.append(iio.imread(file))
            labels.append(label)
    return np.stack(images), np.array(labels)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int):
    """Indices of training and validation crops; every class is split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(val_fraction * len(members))
        val += list(members[:n_val])
        train += list(members[n_val:])
    return np.array(train), np.array(val)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, RGB) -> float (N, 2, 32, 32): the red and green channels (blue is
    empty), shrunk by averaging 2x2 pixels, which makes training 4 times faster."""
    x = torch.from_numpy(images[..., :2]).permute(0, 3, 1, 2).float() / 255
    return torch.nn.functional.avg_pool2d(x, 2)


def main(out_dir: Path) -> dict:
    torch.manual_seed(0)
    images, labels = load_crops(DATA)
    train, val = stratified_split(labels, val_fraction=0.25, seed=0)
    x, y = to_tensor(images), torch.from_numpy(labels)
    # Standardise each channel with the training crops' mean and spread (mean 0, std 1).
    mean = x[train].mean(dim=(0, 2, 3), keepdim=True)
    std = x[train].std(dim=(0, 2, 3), keepdim=True)
    x = (x - mean) / std

    def block(c_in: int, c_out: int) -> list:  # 3x3 convolution, ReLU, halve the size
        return [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]

    model = torch.nn.Sequential(
        *block(2, 16),  # 32x32 -> 16x16
        *block(16, 32),  # -> 8x8
        *block(32, 64),  # -> 4x4
        torch.nn.AdaptiveAvgPool2d(1),  # average each of the 64 feature maps to one number
        torch.nn.Flatten(),
        torch.nn.Linear(64, len(CLASSES)),  # one score per class
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()  # softmax + log loss over the 8 classes

    history = {"train": [], "val": []}
    for _epoch in range(15):  # one epoch = every training crop seen once
        model.train()
        order = train[torch.randperm(len(train)).numpy()]
        total = 0.0
        for start in range(0, len(order), 32):  # mini-batches of 32 crops
            batch = order[start : start + 32]
            loss = loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            scores = model(x[val])
        history["train"].append(total / len(train))
        history["val"].append(loss_fn(scores, y[val]).item())

    predicted = scores.argmax(dim=1).numpy()
    accuracy = float((predicted == labels[val]).mean())
    # Chance level: always answering the most common class of the training set.
    majority = float((labels[val] == np.bincount(labels[train]).argmax()).mean())

    # Figure: 8 validation crops, one per class, with true and predicted label; loss curves.
    fig, axes = plt.subplot_mosaic([list("abcdLL"), list("efghLL")], figsize=(8, 4))
    for key, cls in zip("abcdefgh", range(len(CLASSES))):
        i = np.flatnonzero(labels[val] == cls)[0]
        axes[key].imshow(images[val[i]])
        color = "green" if predicted[i] == cls else "red"
        axes[key].set_title(f"{CLASSES[cls]}\n→ {CLASSES[predicted[i]]}", fontsize=8, color=color)
        axes[key].axis("off")
    fig.text(0.01, 0.02, "true class → predicted class", fontsize=8)
    epochs = range(1, len(history["val"]) + 1)
    axes["L"].plot(epochs, history["train"], label="training")
    axes["L"].plot(epochs, history["val"], label="validation")
    axes["L"].set(xlabel="epoch", ylabel="loss", title=f"validation accuracy {accuracy:.2f}")
    axes["L"].legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "03_cnn_on_crops.png", dpi=80)
    plt.close(fig)

    return {
        "n_train": len(train),
        "n_val": len(val),
        "val_accuracy": accuracy,
        "majority_class_accuracy": majority,
        "final_train_loss": history["train"][-1],
        "final_val_loss": history["val"][-1],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    out = parser.parse_args().out
    if not DATA.is_dir():
        print(f"data folder {DATA} is absent: nothing to do")
        sys.exit(0)
    for key, value in main(out).items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
