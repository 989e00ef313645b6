"""Tutorial 2: stacking neurons bends the line.

Two interleaved spirals cannot be told apart by any straight line, so the single neuron of
tutorial 1 is no better than a coin flip here. A multilayer perceptron (MLP) puts layers of
neurons between input and output; each hidden neuron draws its own line, and a non-linearity
(here ReLU: negative values become 0) lets the next layer combine those lines into curved
boundaries. Both models are trained the same way, and judged on test points they never saw.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files, no window needed
import matplotlib.pyplot as plt
import numpy as np
import torch

torch.set_num_threads(1)


def make_spirals(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two spiral arms, one turned by 180 degrees relative to the other, with a little noise."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.5 * np.pi, 4.5 * np.pi, n_per_class)  # two full turns
    # The distance from the centre grows with the angle; divide so the spiral fits in [-1, 1].
    arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / (4.5 * np.pi)
    points = np.concatenate([arm, -arm]) + rng.normal(0, 0.04, (2 * n_per_class, 2))
    labels = np.repeat([0, 1], n_per_class)
    return points.astype(np.float32), labels.astype(np.float32)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """Full-batch training with Adam, a gradient descent that adapts its step size per weight."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _step in range(steps):
        # BCEWithLogitsLoss = sigmoid + binary cross-entropy in one numerically safe function.
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return ((model(x).squeeze(1) > 0) == y.bool()).float().mean().item()


def main(out_dir: Path) -> dict:
    torch.manual_seed(0)
    train_points, train_labels = make_spirals(300, seed=0)
    test_points, test_labels = make_spirals(300, seed=1)  # fresh points from the same spirals
    x, y = torch.from_numpy(train_points), torch.from_numpy(train_labels)
    x_test, y_test = torch.from_numpy(test_points), torch.from_numpy(test_labels)

    neuron = torch.nn.Linear(2, 1)  # tutorial 1 (the sigmoid is inside the loss)
    mlp = torch.nn.Sequential(  # 2 inputs -> 64 -> 64 hidden neurons -> 1 output
        torch.nn.Linear(2, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    models = {"neuron": neuron, "mlp": mlp}
    results = {}
    for name, model in models.items():
        train(model, x, y, steps=1000)
        results[f"{name}_train_accuracy"] = accuracy(model, x, y)
        results[f"{name}_test_accuracy"] = accuracy(model, x_test, y_test)

    # Figure: colour every position of the plane by the class each model predicts there.
    grid = np.linspace(-1.3, 1.3, 200, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    plane = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, (name, model) in zip(axes, models.items()):
        with torch.no_grad():
            regions = (model(plane) > 0).float().reshape(gx.shape).numpy()
        ax.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fdd0a2"])
        ax.scatter(*test_points[test_labels == 0].T, s=6, color="tab:blue", label="class 0")
        ax.scatter(*test_points[test_labels == 1].T, s=6, color="tab:orange", label="class 1")
        title = "single neuron" if name == "neuron" else "MLP"
        ax.set(title=f"{title}: test accuracy {results[f'{name}_test_accuracy']:.2f}")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "02_multilayer_perceptron.png", dpi=80)
    plt.close(fig)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    for key, value in main(parser.parse_args().out).items():
        print(f"{key}: {value:.3f}")
