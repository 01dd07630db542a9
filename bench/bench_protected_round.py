"""Whole protected round vs plain FedAvg round, 20 hospitals, MLP on breast cancer.

Run: .venv/bin/python bench/bench_protected_round.py [--hospitals 20] [--repeats 3]
Prints a table and writes bench/results/protected_round.json. Plain and protected rounds
alternate, and each figure is the median over the repeats.

Protected = local training + signed updates + signature checks + verification of every update
by encrypted inference on the secret-shared validation set (3 parties) + secure aggregation of
the verified updates (FedHealth's round, fedcore.rounds). Plain = the same local training, then
a bare FedAvg of every update (no signing, no verification, no records). The table gives the
server side on its own as well as the whole round. Everything runs in one process (all
parties' work added up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from fedcore import data, rounds  # noqa: E402
from fedcore.aggregation import fedavg  # noqa: E402
from fedcore.local import train_local  # noqa: E402
from fedcore.model import ModelSpec, flatten, unflatten  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "protected_round.json"
TARGET = 2.0


def plain_round(cfg: rounds.RoundConfig, fd: rounds.FederatedData, g, r: int) -> tuple[float, float]:
    """(local training, server) seconds of one plain round."""
    t0 = time.perf_counter()
    vectors, counts = [], []
    for h in range(cfg.n_hospitals):
        X_h, y_h = fd.hospital(h)
        w = train_local(cfg.spec, unflatten(cfg.spec, g), X_h, y_h, epochs=cfg.local_epochs,
                        learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, seed=r * 1000 + h)
        vectors.append(flatten(w) - g)
        counts.append(len(y_h))
    t1 = time.perf_counter()
    g + fedavg(vectors, counts).vector
    return t1 - t0, time.perf_counter() - t1


def protected_round(cfg: rounds.RoundConfig, fd: rounds.FederatedData, g, r: int) -> tuple[float, float]:
    """(local training with signing, server) seconds of one protected round."""
    t0 = time.perf_counter()
    updates = [rounds.hospital_update(cfg, h, g, *fd.hospital(h), r) for h in range(cfg.n_hospitals)]
    t1 = time.perf_counter()
    X_root, y_root = fd.root
    rounds.finish_round(cfg, g, updates, fd.X_val, fd.y_val, r, X_root=X_root, y_root=y_root)
    return t1 - t0, time.perf_counter() - t1


def summary(times: list[tuple[float, float]]) -> dict:
    return {"local_training_s": statistics.median(t for t, _ in times),
            "server_s": statistics.median(s for _, s in times),
            "round_s": statistics.median(t + s for t, s in times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hospitals", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    table = data.load_builtin("breast_cancer")
    fd = rounds.prepare(table, a.hospitals, seed=0)
    spec = ModelSpec("mlp", table.X.shape[1], 2)
    plain_cfg = rounds.RoundConfig(spec=spec, n_hospitals=a.hospitals, defense="none")
    prot_cfg = rounds.RoundConfig(spec=spec, n_hospitals=a.hospitals, defense="verification", encrypted=True)
    g = rounds.initial_vector(plain_cfg)
    protected_round(prot_cfg, fd, g, 0)  # warm-up: imports, key derivation, caches
    plain_times, prot_times = [], []
    for r in range(1, a.repeats + 1):  # interleaved, so that a change in the machine's load hits both
        plain_times.append(plain_round(plain_cfg, fd, g, r))
        prot_times.append(protected_round(prot_cfg, fd, g, r))
    plain, prot = summary(plain_times), summary(prot_times)
    result = {
        "hospitals": a.hospitals, "validation_rows": int(len(fd.y_val)), "model": "MLP 30-64-32-1", "parties": 3,
        "plain": plain, "protected": prot,
        "ratio_round": prot["round_s"] / plain["round_s"], "ratio_server": prot["server_s"] / plain["server_s"],
        "target_ratio_round": TARGET,
    }
    print(f"{'':28}{'plain FedAvg':>14}{'protected':>14}{'ratio':>9}")
    for key, label in (("local_training_s", "local training (s)"), ("server_s", "server side (s)"), ("round_s", "whole round (s)")):
        print(f"{label:28}{plain[key]:>14.4f}{prot[key]:>14.4f}{prot[key] / plain[key]:>8.1f}x")
    verdict = "met" if result["ratio_round"] <= TARGET else "missed"
    print(f"whole protected round / plain round = {result['ratio_round']:.2f}x (target <= {TARGET}x: {verdict})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
