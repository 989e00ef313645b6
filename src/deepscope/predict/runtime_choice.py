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
TIMING = "fastest call"  # how the seconds on record were measured (:func:`time_calls`)


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
    where nothing (or nothing readable) is, or where it was measured another way than
    :data:`TIMING` (before 2026-12-07: the median of three round-by-round calls on 512²,
    see :func:`time_calls`): such a choice is measured again."""
    mine = read_choices(runtimes_file() if path is None else path).get(cpu_key())
    record = mine.get(network) if isinstance(mine, dict) else None
    if not isinstance(record, dict) or record.get("timing") != TIMING:
        return {}
    return record


def describe_choice(record: Mapping, default_precision: str = "auto") -> str:
    """One line for people about a :func:`remembered` record, e.g. ``'int8, measured
    fastest on this CPU on 2026-12-07 (seconds per 1x1x1024x1024 input: int8 0.103, torch
    0.125, onnx 0.152)'``; ``default_precision`` is the model's own."""
    if not record.get("runtime"):
        default = (
            "the default"
            if default_precision == "auto"
            else f"this model's default is --precision {default_precision}"
        )
        return (
            "not measured on this CPU yet: the first load with --precision auto and "
            f"--backend auto measures it ({default})"
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


def time_calls(
    fns: Mapping[str, BatchFn],
    batch: np.ndarray,
    min_calls: int = 3,
    max_calls: int = 15,
    seconds: float = 0.5,
) -> dict:
    """Seconds per call of each function on ``batch``: the fastest of its timed calls.
    Each function is timed on its own, after two untimed calls, for at least
    ``min_calls`` calls and then on, up to ``max_calls``, until its calls took
    ``seconds``. Load from elsewhere on the machine only ever adds time, so the fastest
    call says how fast a runtime is. One function after another rather than round by
    round: thread pools keep spinning for a while after a call (torch's OpenMP,
    onnxruntime's), and round by round each runtime ran while the previous one's threads
    still held the cores (the int8 network of stardist-nuclei-fluo timed level with
    onnxruntime float32 that way; end to end it is 1.3-1.4x faster)."""
    best = {}
    for name, fn in fns.items():
        fn(batch)
        fn(batch)
        times: list[float] = []
        while len(times) < min_calls or (len(times) < max_calls and sum(times) < seconds):
            begin = time.perf_counter()
            fn(batch)
            times.append(time.perf_counter() - begin)
        best[name] = min(times)
    return best


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
    seconds = time_calls(fns, batch)
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
            "timing": TIMING,
        },
    )
    return chosen, fns[chosen]
