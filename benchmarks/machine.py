"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import platform

from deepscope.predict.backends import cpu_fields


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else the machine type: speed-ups
    and torch's bfloat16 choice depend on it, and ``platform.processor()`` is empty on Linux."""
    return cpu_fields().get("model name") or platform.processor() or platform.machine()
