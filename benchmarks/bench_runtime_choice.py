"""What ``precision='auto'`` picks on this CPU, and what measuring it costs at load.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_runtime_choice.py [--models NAME ...] [--out F]

For every built-in model whose default precision is ``auto`` (or those named), in a fresh
``DEEPSCOPE_HOME``: the seconds of the first ``load_model`` on the CPU (which builds and
times every candidate runtime), of a second load (which builds only the runtime chosen),
the runtime chosen and the seconds per 1024² image (64x128² in 3D) measured for each
candidate. Prints a table; writes benchmarks/results/runtime_choice.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from deepscope.predict.runtime_choice import cpu_key, remembered
from deepscope.spec import ModelSpec, read_spec
from deepscope.zoo import load_model
from deepscope.zoo.model import runtime_key
from deepscope.zoo.registry import builtin_names, resolve_model

RESULTS = Path(__file__).resolve().parent / "results"


def spec_of(name: str) -> ModelSpec:
    return read_spec(resolve_model(name)[0])


def seconds_to_load(name: str) -> float:
    start = time.perf_counter()
    load_model(name, device="cpu")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--out", type=Path, default=RESULTS / "runtime_choice.json")
    args = parser.parse_args()
    names = args.models or [n for n in builtin_names() if spec_of(n).prediction.precision == "auto"]
    os.environ["DEEPSCOPE_HOME"] = tempfile.mkdtemp(prefix="deepscope-home-")
    print(f"{cpu_key()}\n{'model':24} {'first load':>10} {'later':>6}  chosen  seconds per input")
    rows = []
    for name in names:
        first, later = seconds_to_load(name), seconds_to_load(name)
        record = remembered(runtime_key(spec_of(name)))
        rows.append({"model": name, "first_load_s": first, "later_load_s": later, **record})
        timings = ", ".join(f"{k} {v:.3f}" for k, v in record.get("seconds", {}).items())
        print(
            f"{name:24} {first:9.1f}s {later:5.1f}s  {record.get('runtime', '-'):6}  {timings}"
            f" ({'x'.join(map(str, record.get('input', [])[2:]))})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": cpu_key(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
