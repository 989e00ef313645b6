"""The fastest CPU runtime for a network on this machine: measured once, then remembered.

Which of torch (float32 or bfloat16), onnxruntime float32 and an int8 network is fastest
depends on the CPU as much as on the network: on an Intel Xeon with AMX, torch in bfloat16
beats the int8 network for the depth-4 U-Nets, while on an AMD Zen 4 the int8 network wins
(docs/benchmarks.md). So ``precision='auto'`` with ``backend='auto'`` times the candidates
once per network architecture and CPU, and keeps the answer in
``$DEEPSCOPE_HOME/cpu_runtimes.json``; later loads build only the runtime chosen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from deepscope.home import deepscope_home
from deepscope.predict.backends import BatchFn, cpu_fields

RUNTIMES_FILE = "cpu_runtimes.json"


def runtimes_file() -> Path:
    """Where the measured choices are kept."""
    return deepscope_home() / RUNTIMES_FILE


def cpu_key() -> str:
    """This CPU and thread count as one string, e.g. ``'AMD EPYC (family 25, model 1),
    2 threads'``; cloud CPUs share a marketing name across generations, so the family and
    model numbers are part of it."""
    fields = cpu_fields()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return f"{name}, {torch.get_num_threads()} threads"


def network_key(network_settings: Mapping, int8_sha256: str | None = None) -> str:
    """A short key for a network's speed: its architecture settings (weights do not change
    the time) and the int8 file, whose layout its quantisation chose."""
    text = json.dumps(dict(network_settings), sort_keys=True, default=str) + (int8_sha256 or "")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_choices(path: Path) -> dict:
    """The remembered choices, ``{cpu key: {network key: {...}}}``; an unreadable file
    counts as empty (it is re-measured and rewritten)."""
    try:
        choices = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return choices if isinstance(choices, dict) else {}


def remembered(network: str, path: Path | None = None) -> dict:
    """What is on record in ``path`` (default :func:`runtimes_file`) for the network keyed
    ``network`` on this CPU (``runtime``, ``seconds``, ``input``, ``measured``); empty
    where nothing (or nothing readable) is."""
    mine = read_choices(runtimes_file() if path is None else path).get(cpu_key())
    record = mine.get(network) if isinstance(mine, dict) else None
    return record if isinstance(record, dict) else {}


def describe_choice(record: Mapping) -> str:
    """One line for people about a :func:`remembered` record, e.g. ``'int8, measured
    fastest on this CPU on 2026-12-06 (seconds per 1x1x512x512 input: int8 0.110, torch
    0.143, onnx 0.155)'``."""
    if not record.get("runtime"):
        return (
            "not measured on this CPU yet: the first load with --precision auto and "
            "--backend auto (the default) measures it"
        )
    seconds = record.get("seconds") if isinstance(record.get("seconds"), dict) else {}
    times = ", ".join(
        f"{name} {s:.3f}" for name, s in sorted(seconds.items(), key=lambda item: item[1])
    )
    shape = "x".join(str(n) for n in record.get("input", []))
    return f"{record['runtime']}, measured fastest on this CPU on {record.get('measured', '?')}" + (
        f" (seconds per {shape} input: {times})" if times else ""
    )


def write_choice(path: Path, cpu: str, network: str, record: dict) -> None:
    """Add one choice to the file, atomically; a folder that cannot be written only means
    the choice is measured again next time."""
    choices = read_choices(path)
    mine = choices.get(cpu) if isinstance(choices.get(cpu), dict) else {}
    choices[cpu] = {**mine, network: record}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as fh:
            json.dump(choices, fh, indent=1)
        os.replace(fh.name, path)


def time_rounds(fns: Mapping[str, BatchFn], batch: np.ndarray, rounds: int = 3) -> dict:
    """Median seconds per call of each function on ``batch``, timed round by round (each
    round calls every function once), after one untimed call each, so that a load that
    comes and goes on the machine slows all of them alike."""
    for fn in fns.values():
        fn(batch)
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(batch)
            runs[name].append(time.perf_counter() - start)
    return {name: float(np.median(seconds)) for name, seconds in runs.items()}


def fastest_runtime(
    builders: Mapping[str, Callable[[], BatchFn]],
    batch: np.ndarray,
    network: str,
    path: Path | None = None,
) -> tuple[str, BatchFn]:
    """The name and batch function of the fastest runtime among ``builders`` (name ->
    function that builds it) for the network keyed ``network`` on this CPU. A choice on
    record in ``path`` (default :func:`runtimes_file`) is built alone; otherwise every
    runtime is built and timed on ``batch`` and the choice is recorded."""
    path = runtimes_file() if path is None else path
    chosen = remembered(network, path).get("runtime")
    if chosen in builders:
        return chosen, builders[chosen]()
    if len(builders) == 1:
        name = next(iter(builders))
        return name, builders[name]()
    fns = {name: build() for name, build in builders.items()}
    seconds = time_rounds(fns, batch)
    chosen = min(seconds, key=seconds.get)
    write_choice(
        path,
        cpu_key(),
        network,
        {
            "runtime": chosen,
            "seconds": {name: round(s, 4) for name, s in seconds.items()},
            "input": list(batch.shape),
            "measured": time.strftime("%Y-%m-%d"),
        },
    )
    return chosen, fns[chosen]
