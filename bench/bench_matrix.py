"""Attacks x defenses x malicious fractions x IID/non-IID on breast cancer and Pima diabetes.

Run: .venv/bin/python bench/bench_matrix.py [--quick] [--seeds 3] [--workers N] [--model logreg|mlp]
Prints the table (means over seeds), writes bench/results/matrix.json and matrix.png
(matrix-mlp.json and matrix-mlp.png for the MLP).

Each run: logistic regression (or the MLP), 10 hospitals, 8 rounds, 2 local epochs, plaintext verification
(the SMPC path gives the same verdicts; see bench_smpc.py for its cost). Non-IID is Dirichlet
with alpha 0.5. The clean run (no attack) of each setting is the reference for "accuracy within
2 points". Target for the verification defense at 30% malicious (label flip, sign flip, scaling,
noise): >= 95% of poisoned updates dropped, <= 5% of honest ones dropped, final accuracy within
2 points of the clean run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

ATTACKS = ("label_flip", "sign_flip", "gaussian_noise", "scaling", "backdoor", "alie", "min_max")
DEFENSES = ("none", "verification", "krum", "multi_krum", "median", "trimmed_mean", "fltrust")
TARGET_ATTACKS = ("label_flip", "sign_flip", "scaling", "gaussian_noise")
HOSPITALS, ROUNDS = 10, 8


def run_setting(args: tuple) -> list[dict]:
    """Every attack x defense x fraction of one (dataset, partition, seed), sharing the prepared data."""
    dataset, partition, seed, fractions, model = args
    import warnings

    warnings.filterwarnings("ignore")
    from fedcore import data, rounds
    from fedcore.model import ModelSpec

    table = data.load_builtin(dataset)
    fd = rounds.prepare(table, HOSPITALS, scheme=partition, alpha=0.5, seed=seed)
    spec = ModelSpec(model, table.X.shape[1], table.n_classes)
    out = []

    def one(attack: str, defense: str, fraction: float) -> dict:
        cfg = rounds.RoundConfig(spec=spec, n_hospitals=HOSPITALS, attack=attack, defense=defense, encrypted=False,
                                 malicious=rounds.choose_malicious(HOSPITALS, fraction, seed), seed=seed)
        hist = rounds.run_experiment(cfg, fd, ROUNDS)
        det = rounds.detection_metrics([r for h in hist for r in h.records])
        m = hist[-1].metrics
        return {"dataset": dataset, "partition": partition, "seed": seed, "attack": attack, "defense": defense,
                "fraction": fraction, "accuracy": m["accuracy"], "backdoor_success": m.get("backdoor_success"),
                "recall": det["recall"], "fpr": det["false_positive_rate"], "precision": det["precision"]}

    for defense in DEFENSES:
        out.append(one("none", defense, 0.0))
    for attack, defense, fraction in itertools.product(ATTACKS, DEFENSES, fractions):
        out.append(one(attack, defense, fraction))
    return out


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one seed, 30% malicious only")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--model", choices=("logreg", "mlp"), default="logreg")
    a = p.parse_args()
    seeds = range(1) if a.quick else range(a.seeds)
    fractions = (0.3,) if a.quick else (0.1, 0.3, 0.45)
    jobs = [(d, part, s, fractions, a.model) for d in ("breast_cancer", "pima") for part in ("iid", "dirichlet") for s in seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        runs = [r for chunk in pool.map(run_setting, jobs) for r in chunk]
    elapsed = time.perf_counter() - t0

    clean = {(r["dataset"], r["partition"], r["seed"], r["defense"]): r["accuracy"] for r in runs if r["attack"] == "none"}
    for r in runs:
        r["clean_accuracy"] = clean[(r["dataset"], r["partition"], r["seed"], "none")]
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r["attack"] != "none":
            groups.setdefault((r["dataset"], r["partition"], r["attack"], r["defense"], r["fraction"]), []).append(r)
    table = []
    for key, rs in sorted(groups.items()):
        table.append(dict(zip(("dataset", "partition", "attack", "defense", "fraction"), key, strict=True),
                          accuracy=mean(r["accuracy"] for r in rs), clean=mean(r["clean_accuracy"] for r in rs),
                          recall=mean(r["recall"] for r in rs), fpr=mean(r["fpr"] for r in rs),
                          backdoor=mean(r["backdoor_success"] for r in rs)))
    print(f"{a.model}: {len(runs)} runs in {elapsed:.0f} s ({a.workers} processes); means over {len(seeds)} seed(s)")
    print(f"{'dataset':14}{'split':10}{'attack':15}{'defense':14}{'mal.':>6}{'acc':>7}{'clean':>7}{'recall':>8}{'FPR':>6}{'backdoor':>9}")

    def f(v, w=7, d=3):
        return f"{v:>{w}.{d}f}" if v is not None else f"{'—':>{w}}"

    for t in table:
        print(f"{t['dataset']:14}{t['partition']:10}{t['attack']:15}{t['defense']:14}{t['fraction']:>6.2f}{f(t['accuracy'])}"
              f"{f(t['clean'])}{f(t['recall'], 8, 2)}{f(t['fpr'], 6, 2)}{f(t['backdoor'], 9)}")

    checks = []
    if 0.3 in fractions:
        for t in table:
            if t["defense"] == "verification" and t["fraction"] == 0.3 and t["attack"] in TARGET_ATTACKS:
                ok = (t["recall"] or 0) >= 0.95 and (t["fpr"] or 0) <= 0.05 and t["clean"] - t["accuracy"] <= 0.02
                checks.append({**t, "met": ok})
        met = sum(c["met"] for c in checks)
        print(f"\nverification at 30% malicious, {', '.join(TARGET_ATTACKS)}: target met in {met} of {len(checks)} settings")
        for c in checks:
            if not c["met"]:
                print(f"  missed: {c['dataset']} {c['partition']} {c['attack']}: recall {c['recall']:.2f}, "
                      f"FPR {c['fpr']:.2f}, accuracy {c['accuracy']:.3f} vs clean {c['clean']:.3f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "matrix" if a.model == "logreg" else f"matrix-{a.model}"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"model": a.model, "runs": runs, "table": table, "target_checks": checks,
                                                      "seconds": elapsed, "hospitals": HOSPITALS, "rounds": ROUNDS}, indent=1))
    chart(table, fractions, RESULTS / f"{stem}.png", a.model)


def chart(table: list[dict], fractions, path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frac = 0.3 if 0.3 in fractions else fractions[0]
    fig, axes = plt.subplots(2, 2, figsize=(15, 8), sharey="row")
    for col, dataset in enumerate(("breast_cancer", "pima")):
        rows = [t for t in table if t["dataset"] == dataset and t["partition"] == "iid" and t["fraction"] == frac]
        for row, (metric, label) in enumerate((("accuracy", "final accuracy"), ("recall", "poisoned updates dropped (recall)"))):
            ax = axes[row][col]
            width = 0.8 / len(DEFENSES)
            for k, d in enumerate(DEFENSES):
                vals = [next((t[metric] for t in rows if t["attack"] == at and t["defense"] == d), None) for at in ATTACKS]
                ax.bar([i + k * width for i in range(len(ATTACKS))], [v if v is not None else 0 for v in vals], width, label=d)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(ATTACKS))], ATTACKS, rotation=20, fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{model}, {dataset}, IID, {int(frac * 100)}% malicious: {label}", fontsize=10)
    axes[0][0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
