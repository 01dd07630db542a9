"""SMPC benchmarks: encrypted vs plaintext inference, secure vs plain aggregation.

Run: .venv/bin/python bench/bench_smpc.py [--quick]
Prints a table and writes bench/results/smpc.json. Everything runs in one process, so the
SMPC figures are the work of all parties (and of the dealer) added up: a deployment would
spread it over machines and pay network latency instead (rounds and bytes are reported).
Timings are medians of several runs; the machine may be shared, so the load is recorded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from fedcore.aggregation import fedavg  # noqa: E402
from fedcore.model import ModelSpec, evaluate, forward_logits  # noqa: E402
from fedcore.smpc import MaskedAggregation, encrypted_evaluate, secure_weighted_sum  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "smpc.json"
TARGET_INFERENCE_RATIO = 30.0
TARGET_AGGREGATION_RATIO = 3.0


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: imports, caches, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plaintext_scores(
    spec: ModelSpec, weights: list[np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[int, float]:
    """What encrypted_evaluate opens, in the clear: correct count and mean hinge loss."""
    z = forward_logits(spec, weights, X)[:, 0]
    return int(np.sum((z > 0) == y)), float(np.mean(np.maximum(0.0, 1.0 - (2 * y - 1) * z)))


def bench_inference(rows: int, repeats: int) -> dict:
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.6
    X = StandardScaler().fit(X[train]).transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((64, 32), max_iter=200, random_state=0).fit(X[train], y[train])
    weights = [a for pair in zip(clf.coefs_, clf.intercepts_, strict=True) for a in pair]
    spec = ModelSpec("mlp", 30, 2, (64, 32))
    idx = rng.choice(np.flatnonzero(~train), rows)  # the held-out rows, resampled to `rows`
    Xv, yv = X[idx], y[idx]

    result = encrypted_evaluate(spec, weights, Xv, yv, n_parties=3, seed=1)
    t_enc = median_seconds(
        lambda: encrypted_evaluate(spec, weights, Xv, yv, n_parties=3, seed=1), repeats
    )
    runs = [encrypted_evaluate(spec, weights, Xv, yv, n_parties=3, seed=1) for _ in range(repeats)]
    t_online = statistics.median(r.seconds - r.offline_seconds for r in runs)
    t_plain = median_seconds(lambda: plaintext_scores(spec, weights, Xv, yv), repeats * 20)
    t_eval = median_seconds(lambda: evaluate(spec, weights, Xv, yv), repeats * 4)
    correct, hinge = plaintext_scores(spec, weights, Xv, yv)
    return {
        "rows": rows,
        "parties": 3,
        "model": "MLP 30-64-32-1 (sklearn MLPClassifier, breast cancer, held-out rows)",
        "encrypted_seconds": t_enc,
        "encrypted_online_seconds": t_online,
        "plaintext_forward_seconds": t_plain,
        "plaintext_evaluate_seconds": t_eval,
        "ratio_vs_forward": t_enc / t_plain,
        "ratio_vs_evaluate": t_enc / t_eval,
        "online_ratio_vs_forward": t_online / t_plain,
        "rounds": result.rounds,
        "megabytes_sent": result.bytes_sent / 1e6,
        "encrypted_accuracy": result.accuracy,
        "plaintext_accuracy": correct / rows,
        "encrypted_hinge": result.loss,
        "plaintext_hinge": hinge,
        "opened": result.opened,
    }


def bench_aggregation(k: int, p: int, repeats: int) -> dict:
    rng = np.random.default_rng(2)
    U = rng.normal(0, 0.05, (k, p))
    vectors = list(U)
    counts = rng.integers(20, 400, k).astype(np.float64)
    w = list(counts / counts.sum())
    t_sec = median_seconds(lambda: secure_weighted_sum(vectors, w, n_parties=3, seed=3), repeats)
    t_fedavg = median_seconds(lambda: fedavg(U, counts), repeats * 3)
    t_stack = median_seconds(lambda: fedavg(np.stack(vectors), counts), repeats * 3)
    err = float(
        np.abs(
            secure_weighted_sum(vectors, w, n_parties=3, seed=3) - fedavg(U, counts).vector
        ).max()
    )
    return {
        "updates": k,
        "parameters": p,
        "parties": 3,
        "secure_seconds": t_sec,
        "fedavg_seconds": t_fedavg,
        "fedavg_with_stack_seconds": t_stack,
        "ratio_vs_fedavg": t_sec / t_fedavg,
        "ratio_vs_fedavg_with_stack": t_sec / t_stack,
        "max_abs_error": err,
    }


def bench_bonawitz(n: int, p: int, dropped: int) -> dict:
    rng = np.random.default_rng(4)
    V = [rng.normal(0, 0.05, p) for _ in range(n)]
    t0 = time.perf_counter()
    proto = MaskedAggregation(n, n // 2 + 1, seed=5)
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    masked = {i: proto.masked_input(i, V[i]) for i in range(dropped, n)}
    t_mask = time.perf_counter() - t0
    t0 = time.perf_counter()
    total = proto.aggregate(masked)
    t_agg = time.perf_counter() - t0
    err = float(np.abs(total - sum(V[dropped:])).max())
    return {
        "clients": n,
        "parameters": p,
        "dropped": dropped,
        "threshold": n // 2 + 1,
        "setup_seconds": t_setup,
        "masking_seconds_all_clients": t_mask,
        "server_unmask_seconds": t_agg,
        "max_abs_error": err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, fewer repeats (smoke run)"
    )
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    inf = bench_inference(200 if args.quick else 1000, repeats)
    agg = bench_aggregation(20 if args.quick else 100, 10_000 if args.quick else 100_000, repeats)
    bon = bench_bonawitz(10, 10_000, 2)

    print(f"\nEncrypted inference, {inf['model']}, {inf['rows']} rows, {inf['parties']} parties")
    print(f"  {'encrypted (total)':34s}{inf['encrypted_seconds'] * 1e3:10.1f} ms")
    print(f"  {'encrypted (online only)':34s}{inf['encrypted_online_seconds'] * 1e3:10.1f} ms")
    print(
        f"  {'plaintext forward + scores':34s}{inf['plaintext_forward_seconds'] * 1e3:10.2f} ms"
        f"   ratio {inf['ratio_vs_forward']:7.1f}x (online {inf['online_ratio_vs_forward']:.1f}x)"
        f"   target <= {TARGET_INFERENCE_RATIO:.0f}x"
    )
    print(
        f"  {'plaintext fedcore.model.evaluate':34s}{inf['plaintext_evaluate_seconds'] * 1e3:10.2f} ms"
        f"   ratio {inf['ratio_vs_evaluate']:7.1f}x"
    )
    print(
        f"  rounds {inf['rounds']}, traffic {inf['megabytes_sent']:.1f} MB, opened {inf['opened']}"
    )
    print(
        f"  accuracy encrypted {inf['encrypted_accuracy']:.4f} / plaintext {inf['plaintext_accuracy']:.4f}; "
        f"hinge {inf['encrypted_hinge']:.5f} / {inf['plaintext_hinge']:.5f}"
    )
    print(
        f"\nSecure aggregation, {agg['updates']} updates x {agg['parameters']:,} parameters, 3 parties"
    )
    print(f"  {'secure_weighted_sum':34s}{agg['secure_seconds'] * 1e3:10.1f} ms")
    print(
        f"  {'fedavg on the (k, p) matrix':34s}{agg['fedavg_seconds'] * 1e3:10.1f} ms"
        f"   ratio {agg['ratio_vs_fedavg']:7.1f}x   target <= {TARGET_AGGREGATION_RATIO:.0f}x"
    )
    print(
        f"  {'fedavg incl. stacking the list':34s}{agg['fedavg_with_stack_seconds'] * 1e3:10.1f} ms"
        f"   ratio {agg['ratio_vs_fedavg_with_stack']:7.1f}x"
    )
    print(f"  max |secure - fedavg| = {agg['max_abs_error']:.2e}")
    print(
        f"\nBonawitz masking, {bon['clients']} clients x {bon['parameters']:,} parameters, "
        f"{bon['dropped']} dropped, threshold {bon['threshold']}"
    )
    print(
        f"  setup {bon['setup_seconds'] * 1e3:.0f} ms, masking (all clients) {bon['masking_seconds_all_clients'] * 1e3:.0f} ms, "
        f"server unmasking {bon['server_unmask_seconds'] * 1e3:.0f} ms, max error {bon['max_abs_error']:.1e}"
    )

    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "inference": inf,
                    "aggregation": agg,
                    "bonawitz": bon,
                    "targets": {
                        "inference_ratio": TARGET_INFERENCE_RATIO,
                        "aggregation_ratio": TARGET_AGGREGATION_RATIO,
                    },
                    "machine": describe(),
                },
                indent=2,
            )
            + "\n"
        )
        print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
