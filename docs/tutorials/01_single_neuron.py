"""Tutorial 1: a single neuron draws a straight line.

A single artificial neuron multiplies each input by a weight, adds them up with a bias and
squashes the sum into a probability between 0 and 1 (the "sigmoid"). Here the inputs are two
numbers per cell, think of two measured features such as size and brightness, and the neuron
learns to tell two populations apart. Training means nudging the weights, step by step, in the
direction that lowers the error (the "loss"): this is gradient descent. Whatever the weights, the
neuron can only separate the two populations with a straight line.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files, no window needed
import matplotlib.pyplot as plt
import numpy as np
import torch

torch.set_num_threads(1)


def make_clouds(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two round clouds of 2D points, class 0 around (-1, -1) and class 1 around (+1, +1)."""
    rng = np.random.default_rng(seed)
    class0 = rng.normal(loc=(-1.0, -1.0), scale=0.7, size=(n_per_class, 2))
    class1 = rng.normal(loc=(1.0, 1.0), scale=0.7, size=(n_per_class, 2))
    points = np.concatenate([class0, class1]).astype(np.float32)
    labels = np.repeat([0, 1], n_per_class).astype(np.float32)
    return points, labels


def main(out_dir: Path) -> dict:
    torch.manual_seed(0)
    points, labels = make_clouds(n_per_class=100, seed=0)
    x = torch.from_numpy(points)
    y = torch.from_numpy(labels)

    # The whole model: 2 inputs -> 1 output, i.e. two weights and one bias.
    neuron = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(neuron.parameters(), lr=0.5)

    losses = []
    for _step in range(100):
        probability = torch.sigmoid(neuron(x)).squeeze(1)  # P(class 1) for every point
        # Binary cross-entropy: small when the probabilities agree with the true labels.
        loss = torch.nn.functional.binary_cross_entropy(probability, y)
        optimizer.zero_grad()
        loss.backward()  # how the loss changes with each weight (the gradient)
        optimizer.step()  # move each weight a little downhill
        losses.append(loss.item())

    with torch.no_grad():
        predicted = torch.sigmoid(neuron(x)).squeeze(1) > 0.5
    accuracy = (predicted == y.bool()).float().mean().item()
    (w1, w2), b = neuron.weight[0].tolist(), neuron.bias.item()

    # Figure: the points with the learned line w1*x1 + w2*x2 + b = 0, and the loss per step.
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    for cls, color in ((0, "tab:blue"), (1, "tab:orange")):
        mask = labels == cls
        left.scatter(points[mask, 0], points[mask, 1], s=10, color=color, label=f"class {cls}")
    x1 = np.linspace(points[:, 0].min(), points[:, 0].max(), 2)
    left.plot(x1, -(w1 * x1 + b) / w2, "k-", label="learned boundary")
    left.set(xlabel="feature 1", ylabel="feature 2", title=f"accuracy {accuracy:.2f}")
    left.set_ylim(points[:, 1].min() - 0.5, points[:, 1].max() + 0.5)
    left.legend(fontsize=8)
    right.plot(losses)
    right.set(xlabel="gradient descent step", ylabel="loss (binary cross-entropy)", title="loss")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "01_single_neuron.png", dpi=80)
    plt.close(fig)

    return {
        "accuracy": accuracy,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "weight_1": w1,
        "weight_2": w2,
        "bias": b,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    results = main(parser.parse_args().out)
    for key, value in results.items():
        print(f"{key}: {value:.3f}")
