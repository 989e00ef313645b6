"""Training speed: batches drawn ahead by worker threads, and bfloat16 steps.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_training_speed.py [--configs CONFIG.yaml ...]
        [--steps 40] [--settings 0:float32 1:float32 2:float32 0:bfloat16] [--rounds 2]
        [--threads N] [--json FILE]

For each training config (the built-in models' recipes by default: star-convex and flows on
DSB fluorescence nuclei): the time to draw one batch alone, then the seconds per training
step (batch, forward, backward, optimiser) for each setting ``WORKERS:PRECISION``
(``loader_workers`` and ``precision``). The settings alternate round by round on the same
network, so the machine's drift hits them alike; a few warm-up steps per setting are not
timed. Prints one row per config and setting, writes ``benchmarks/results/training_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from machine import cpu_model

from deepscope.nets import build_network
from deepscope.predict.backends import use_bfloat16
from deepscope.train.batches import BatchStream, draw_batch
from deepscope.train.config import load_train_config
from deepscope.train.trainer import Trainer, make_optimizer, seed_everything

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    ROOT / "configs" / "stardist-nuclei-fluo.yaml",
    ROOT / "configs" / "flows-nuclei-fluo.yaml",
]
WARM_UP = 3


def seconds_per_step(trainer, net, optimizer, sampler, workers: int, steps: int) -> float:
    """Median seconds per training step over ``steps`` steps after a warm-up (at the
    precision of ``trainer``'s config)."""
    times = []
    with BatchStream(sampler, seed=0, first_step=0, workers=workers) as batches:
        for i in range(WARM_UP + steps):
            t0 = time.perf_counter()
            x, y = next(batches)
            trainer._step(net, optimizer, x, y)
            if i >= WARM_UP:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_config(path: Path, settings: list[str], steps: int, rounds: int) -> list[dict]:
    config = load_train_config(path)
    trainer = Trainer(config)
    train, _ = trainer.load_data()
    net_config = trainer.network_config(train)
    sampler = trainer.make_sampler(train, seed_everything(0))
    net = build_network(net_config)
    if trainer.channels_last:  # as the trainer runs it
        net = net.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(trainer.config, net.parameters())
    draw_batch(sampler, 0, 10)  # compiles the numba kernels of the targets
    t0 = time.perf_counter()
    for step in range(10):
        draw_batch(sampler, 0, step)
    batch_alone = (time.perf_counter() - t0) / 10
    runs = {}  # setting -> (trainer at its precision, loader workers)
    for setting in settings:
        workers, precision = setting.split(":")
        update = {"precision": precision}
        runs[setting] = (Trainer(trainer.config.model_copy(update=update)), int(workers))
    per_setting: dict[str, list[float]] = {s: [] for s in settings}
    for _ in range(rounds):
        for s in settings:
            run_trainer, workers = runs[s]
            per_setting[s].append(
                seconds_per_step(run_trainer, net, optimizer, sampler, workers, steps)
            )
    rows = []
    base = statistics.median(per_setting[settings[0]])
    for s in settings:
        step = statistics.median(per_setting[s])
        rows.append(
            {
                "config": path.name,
                "setting": s,
                "bfloat16": runs[s][0].bf16,
                "batch_alone_s": round(batch_alone, 4),
                "step_s": round(step, 4),
                "rounds_s": [round(t, 4) for t in per_setting[s]],
                "speed_up": round(base / step, 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", type=Path, default=CONFIGS)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--settings", nargs="+", default=["0:float32", "1:float32", "2:float32", "0:bfloat16"]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/training_speed.json"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for path in args.configs:
        rows += bench_config(path, args.settings, args.steps, args.rounds)
    header = ("config", "workers:precision", "batch alone", "s / step", "speed-up")
    print(f"{header[0]:<28} {header[1]:>18} {header[2]:>11} {header[3]:>9} {header[4]:>8}")
    for r in rows:
        print(
            f"{r['config']:<28} {r['setting']:>18} {r['batch_alone_s']:>10.3f}s "
            f"{r['step_s']:>8.3f}s {r['speed_up']:>7.2f}x"
        )
    result = {
        "cpu": cpu_model(),
        "native_bfloat16": use_bfloat16("auto", torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "rounds": args.rounds,
        "rows": rows,
    }
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
