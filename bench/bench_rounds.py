"""Federated round cost: FedAvg round time for 10, 100 and 1,000 hospitals (linear fit), peak
memory, and the speed-up of 2 Celery worker processes over 1.

Run: .venv/bin/python bench/bench_rounds.py [--quick] [--skip-celery]
Prints tables and writes bench/results/rounds.json.

* Round time: one round of FedHealth's pipeline with plain FedAvg (local MLP training of every
  hospital, signing, signature checks, the per-update scores recorded for every update, FedAvg,
  test metrics), each setting in a fresh process so that its peak RSS is its own. Breast cancer
  has about 370 training rows: 1,000 hospitals would get fewer than the 2 rows each that a
  partition needs, so it runs up to 100 hospitals; the synthetic EHR has 100,000 rows.
* Workers: the same experiment launched through Celery (filesystem broker, SQLite, a fresh
  database under a temporary folder) on a worker with --concurrency 1, then 2.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rounds.json"


def _one_round(dataset: str, rows: int, hospitals: int, q) -> None:
    from fedcore import data, rounds
    from fedcore.model import ModelSpec

    table = data.load_builtin("breast_cancer") if dataset == "breast_cancer" else data.synthetic_ehr(n_rows=rows, seed=0)
    fd = rounds.prepare(table, hospitals, seed=0)
    cfg = rounds.RoundConfig(spec=ModelSpec("mlp", table.X.shape[1], 2), n_hospitals=hospitals, defense="none", encrypted=False)
    g = rounds.initial_vector(cfg)
    t0 = time.perf_counter()
    out = rounds.run_round(cfg, fd, g, 1)
    seconds = time.perf_counter() - t0
    q.put({"dataset": dataset, "rows": int(len(table.y)), "hospitals": hospitals, "seconds": seconds,
           "accuracy": out.metrics["accuracy"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def round_times(settings: list[tuple[str, int, int]]) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    for dataset, n_rows, hospitals in settings:
        q = ctx.Queue()
        p = ctx.Process(target=_one_round, args=(dataset, n_rows, hospitals, q))
        p.start()
        rows.append(q.get())
        p.join()
        r = rows[-1]
        print(f"{r['dataset']:14}{r['rows']:>9,}{r['hospitals']:>11,}{r['seconds']:>11.2f}{r['seconds'] / r['hospitals'] * 1000:>12.1f}"
              f"{r['peak_rss_mb']:>12.0f}{r['accuracy']:>10.3f}", flush=True)
    return rows


def linear_fit(rows: list[dict]) -> dict:
    x = np.array([r["hospitals"] for r in rows], dtype=float)
    y = np.array([r["seconds"] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return {"seconds_per_hospital": slope, "intercept_s": intercept, "r2": r2}


def celery_run(concurrency: int, hospitals: int, rounds_: int, epochs: int) -> float:
    """Wall time of one experiment on a fresh database with one worker of ``concurrency`` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "FEDHEALTH_BROKER_DIR": f"{tmp}/broker",
               "CELERY_BROKER_URL": "filesystem://", "CELERY_RESULT_BACKEND": f"file://{tmp}/results",
               "DJANGO_SETTINGS_MODULE": "fedhealth.settings"}
        os.makedirs(f"{tmp}/results")
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([py, "manage.py", "ledger_init"], cwd=ROOT, env=env, check=True, capture_output=True)
        log = open(f"{tmp}/worker.log", "w+")
        worker = subprocess.Popen([py, "-m", "celery", "-A", "fedhealth", "worker", f"--concurrency={concurrency}",
                                   "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while "ready." not in open(f"{tmp}/worker.log").read():
                time.sleep(0.2)
            script = (
                "import time, django; django.setup()\n"
                "from training import services; from training.models import Experiment\n"
                "ds = services.dataset_create_synthetic(name='EHR', n_rows=100000, positive_fraction=0.3, seed=0)\n"
                f"exp = services.experiment_create(name='w', dataset=ds, n_hospitals={hospitals}, rounds_={rounds_}, "
                f"local_epochs={epochs}, defense='none', encrypted=False)\n"
                "t0 = time.perf_counter()\n"
                "while Experiment.objects.get(pk=exp.pk).status in ('queued', 'running'): time.sleep(0.1)\n"
                "e = Experiment.objects.get(pk=exp.pk); assert e.status == 'finished', e.error\n"
                "print(time.perf_counter() - t0)\n"
            )
            out = subprocess.run([py, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
            return float(out.stdout.strip().splitlines()[-1])
        finally:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller EHR (20,000 rows) and fewer hospitals")
    p.add_argument("--skip-celery", action="store_true")
    p.add_argument("--celery-only", action="store_true", help="only the 1 vs 2 worker processes measurement")
    a = p.parse_args()
    ehr_rows = 20_000 if a.quick else 100_000
    sizes = (10, 100, 300) if a.quick else (10, 100, 1000)
    settings = [("breast_cancer", 0, 10), ("breast_cancer", 0, 100)] + [("synthetic_ehr", ehr_rows, h) for h in sizes]
    result = json.loads(RESULTS.read_text()) if a.celery_only and RESULTS.exists() else {}
    if not a.celery_only:
        print(f"{'dataset':14}{'rows':>9}{'hospitals':>11}{'round (s)':>11}{'ms/hospital':>12}{'peak RSS MB':>12}{'accuracy':>10}")
        rows = round_times(settings)
        fit = linear_fit([r for r in rows if r["dataset"] == "synthetic_ehr"])
        print(f"linear fit (synthetic EHR): {fit['seconds_per_hospital'] * 1000:.1f} ms per hospital + "
              f"{fit['intercept_s']:.2f} s, R^2 = {fit['r2']:.4f}")
        result.update({"rounds": rows, "fit_synthetic_ehr": fit})
    if not a.skip_celery:
        h, r_, e = (40, 3, 10)
        one = celery_run(1, h, r_, e)
        two = celery_run(2, h, r_, e)
        result["workers"] = {"hospitals": h, "rounds": r_, "local_epochs": e, "dataset_rows": 100_000,
                             "one_worker_s": one, "two_workers_s": two, "speedup": one / two, "target": 1.6,
                             "cpus": os.cpu_count()}
        print(f"Celery, synthetic EHR 100,000 rows, {h} hospitals x {r_} rounds: 1 worker process {one:.1f} s, "
              f"2 worker processes {two:.1f} s, speed-up {one / two:.2f}x (target >= 1.6x, {os.cpu_count()} CPUs)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
