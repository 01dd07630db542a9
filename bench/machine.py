"""What a benchmark ran on, written beside its figures: the same code is up to 2x faster or
slower from one CPU to another (numpy's sort and copy loops depend on its SIMD level)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        __cpu_features__ = {}
    simd = [name for name in ("AVX2", "AVX512F", "AVX512_SKX", "AVX512_ICL", "ASIMD", "SVE") if __cpu_features__.get(name)]
    return {"cpu": cpu_model(), "simd": simd, "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()}
