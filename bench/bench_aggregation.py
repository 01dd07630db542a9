"""Robust aggregation vs Flower: Krum, Multi-Krum, median and trimmed mean on the same updates,
in the same process; FedAvg vs a bare numpy weighted mean.

Flower is not a project requirement; it lives in the benchmark's own environment:
    python3 -m venv /tmp/flwrbench && /tmp/flwrbench/bin/pip install flwr numpy scikit-learn pycryptodome
Run:  /tmp/flwrbench/bin/python bench/bench_aggregation.py [--updates 100] [--params 100000] [--repeats 5]
(fedcore is imported from this checkout; it needs only numpy for aggregation.)
Prints a table and writes bench/results/aggregation.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from fedcore import aggregation as ours  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "aggregation.json"


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--params", type=int, default=100_000)
    p.add_argument("--malicious", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    try:
        import flwr
        from flwr.server.strategy.aggregate import (
            aggregate_krum,
            aggregate_median,
            aggregate_trimmed_avg,
        )
    except ImportError:
        sys.exit("flwr is not installed here: run this with /tmp/flwrbench/bin/python (see the docstring)")

    rng = np.random.default_rng(0)
    U = rng.normal(size=(a.updates, a.params))
    counts = rng.integers(50, 500, size=a.updates)
    flwr_results = [([U[i]], int(counts[i])) for i in range(a.updates)]
    k, f, beta = a.updates, a.malicious, 0.1
    m = k - f
    cases = [
        ("krum", lambda: ours.krum(U, f).vector, lambda: aggregate_krum(flwr_results, f, 0)[0]),
        ("multi_krum", lambda: ours.multi_krum(U, f, m=m).vector, lambda: aggregate_krum(flwr_results, f, m)[0]),
        ("median", lambda: ours.median(U).vector, lambda: aggregate_median(flwr_results)[0]),
        ("trimmed_mean", lambda: ours.trimmed_mean(U, beta).vector, lambda: aggregate_trimmed_avg(flwr_results, beta)[0]),
    ]
    rows = []
    for name, mine, theirs in cases:
        # flwr first: a fedcore case that used BLAS (Krum's Gram matrix) leaves OpenBLAS threads
        # spinning for a while, which would slow whatever runs next on this 2-core machine
        t_flwr, v_flwr = best_of(theirs, a.repeats)
        t_ours, v_ours = best_of(mine, a.repeats)
        # flwr's Multi-Krum weights the kept updates by their sample counts; ours averages them
        same = bool(np.allclose(v_ours, v_flwr)) if name != "multi_krum" else None
        rows.append({"aggregator": name, "fedcore_s": t_ours, "flwr_s": t_flwr, "speedup": t_flwr / t_ours,
                     "target_speedup": 10.0, "same_result": same})
    t_fedavg, v1 = best_of(lambda: ours.fedavg(U, counts).vector, a.repeats)
    t_numpy, v2 = best_of(lambda: np.average(U, axis=0, weights=counts), a.repeats)
    fedavg = {"fedcore_s": t_fedavg, "numpy_average_s": t_numpy, "ratio": t_fedavg / t_numpy, "target_ratio": 1.3,
              "same_result": bool(np.allclose(v1, v2))}
    print(f"{a.updates} updates x {a.params:,} parameters (float64), flwr {flwr.__version__}, median of {a.repeats} runs")
    print(f"{'aggregator':14}{'fedcore (s)':>13}{'flwr (s)':>11}{'speed-up':>10}{'target':>9}  same result")
    for r in rows:
        verdict = "met" if r["speedup"] >= 10 else "missed"
        print(f"{r['aggregator']:14}{r['fedcore_s']:>13.4f}{r['flwr_s']:>11.4f}{r['speedup']:>9.1f}x{'>=10x':>9}  "
              f"{'n/a (flwr weights by samples)' if r['same_result'] is None else r['same_result']}  {verdict}")
    print(f"{'fedavg':14}{t_fedavg:>13.4f}{t_numpy:>11.4f}{fedavg['ratio']:>9.2f}x{'<=1.3x':>9}  vs np.average: "
          f"{fedavg['same_result']}  {'met' if fedavg['ratio'] <= 1.3 else 'missed'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"updates": a.updates, "params": a.params, "malicious": f, "flwr": flwr.__version__,
                                   "robust": rows, "fedavg": fedavg, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
