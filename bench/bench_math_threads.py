"""Why each Celery worker process computes with one BLAS thread (fedhealth.celery).

Run: .venv/bin/python bench/bench_math_threads.py [--repeats 20]
Prints a table and writes bench/results/math_threads.json.

The server side of a round multiplies small matrices (cosines of 20 updates, Krum's distances)
and each hospital's local training many tiny ones. Timed with the BLAS library's own thread
pool (its default: one thread per core) and with one thread, on an idle machine and with every
other core busy with another worker process doing the same kind of work (one per other core),
itself with the default threads or with one: the setting applies to every worker process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench.bench_smpc import median_seconds  # noqa: E402
from bench.machine import describe  # noqa: E402
from fedcore import data, rounds  # noqa: E402
from fedcore.aggregation import krum  # noqa: E402
from fedcore.local import train_local  # noqa: E402
from fedcore.model import ModelSpec, unflatten  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "math_threads.json"


def neighbour(stop, limit_threads: bool) -> None:
    """Another worker process: matrix products of the sizes a round has, back to back, with the
    BLAS library's default threads (as every process had before) or with one."""
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(32, 30)), rng.normal(size=(30, 64))
    U = rng.normal(size=(20, 4000))
    with threadpool_limits(1 if limit_threads else None):
        while not stop.is_set():
            for _ in range(50):
                A @ B
            U @ U.T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args()
    table = data.load_builtin("breast_cancer")
    fd = rounds.prepare(table, 20, seed=0)
    spec = ModelSpec("mlp", table.X.shape[1], 2)
    g = rounds.initial_vector(rounds.RoundConfig(spec=spec, n_hospitals=20))
    U = np.random.default_rng(0).normal(size=(20, g.size))
    work = {
        "cosines of 20 updates (ms)": lambda: rounds._mean_cosines(U),
        "Krum of 20 updates (ms)": lambda: krum(U, 4),
        "local training of one hospital (ms)": lambda: train_local(spec, unflatten(spec, g), *fd.hospital(0), epochs=2,
                                                                   learning_rate=0.01, batch_size=32, seed=0),
    }
    others = max(0, (os.cpu_count() or 1) - 1)
    rows = {}
    for load in ("idle", "other worker processes busy"):
        row = {}
        for setting, limit in (("default_threads_ms", None), ("one_thread_ms", 1)):
            stop = multiprocessing.Event()
            busy = others if load != "idle" else 0
            neighbours = [multiprocessing.Process(target=neighbour, args=(stop, limit == 1)) for _ in range(busy)]
            for n in neighbours:
                n.start()
            try:
                with threadpool_limits(limit):
                    for name, fn in work.items():
                        row.setdefault(name, {})[setting] = median_seconds(fn, a.repeats) * 1e3
            finally:
                stop.set()
                for n in neighbours:
                    n.join()
        rows.update({f"{name}, {load}": r for name, r in row.items()})
    print(f"{'':66}{'BLAS default':>14}{'one thread':>12}")
    for name, r in rows.items():
        print(f"{name:66}{r['default_threads_ms']:>14.2f}{r['one_thread_ms']:>12.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "busy_processes": others, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
