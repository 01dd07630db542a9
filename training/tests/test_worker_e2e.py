"""The Celery path end to end with real worker processes (filesystem broker by default,
Redis in CI), including a worker killed mid-round."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from ledger.selectors import ledger_verify
from poisoning.models import UpdateRecord
from training import services
from training.models import Experiment, Round

pytestmark = [pytest.mark.services, pytest.mark.slow]


def wait(exp: Experiment, until, timeout: float = 240, poll: float = 0.3) -> Experiment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exp.refresh_from_db()
        if until(exp):
            return exp
        time.sleep(poll)
    raise AssertionError(f"timed out: {exp.status} round {exp.current_round} hospitals {exp.hospitals_done} {exp.error}")


LAUNCH = {"model_kind": "mlp", "n_hospitals": 20, "rounds": 10, "partition": "iid", "alpha": 0.5, "local_epochs": 2,
          "learning_rate": 0.01, "batch_size": 32, "seed": 11, "attack": "none", "malicious_fraction": 0,
          "defense": "verification", "encrypted": "on"}


def test_page_launch_runs_on_a_real_worker_with_live_progress(client, provider, celery_worker_process):
    ds = services.dataset_create_builtin(name="breast_cancer")
    worker = celery_worker_process(concurrency=2)
    client.force_login(provider)
    r = client.post(reverse("training:experiment_create"), {**LAUNCH, "name": "20 hospitals", "dataset": ds.pk})
    exp = Experiment.objects.get(name="20 hospitals")
    assert r.status_code == 302
    progress_url = reverse("training:experiment_progress", args=[exp.pk])
    seen = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        p = client.get(progress_url).json()
        seen.add(p["fields"]["round"])
        if p["done"]:
            break
        time.sleep(0.3)
    exp.refresh_from_db()
    assert exp.status == "finished", exp.error + worker.output()[-2000:]
    assert len(seen) >= 3  # progress moved while we watched
    exp = wait(exp, lambda e: e.centralised)
    assert abs(exp.final["accuracy"] - exp.centralised["accuracy"]) <= 0.03
    assert list(Round.objects.filter(experiment=exp).values_list("number", flat=True)) == list(range(1, 11))
    assert UpdateRecord.objects.filter(experiment=exp, encrypted=True).count() == 200
    assert "training.round_train_hospital" in worker.output()
    assert ledger_verify().intact
    # same seed, same numbers
    again = services.experiment_create(name="again", dataset=ds, n_hospitals=20, rounds_=10, seed=11, encrypted=True)
    again = wait(again, lambda e: e.status == "finished")
    assert again.final == exp.final


def test_a_worker_killed_mid_round_does_not_lose_the_experiment(celery_worker_process):
    ds = services.dataset_create_builtin(name="breast_cancer")
    first = celery_worker_process(concurrency=1, name="victim")
    # many short rounds, polled often: a fast worker must not finish before a mid-round moment is seen
    exp = services.experiment_create(name="kill", dataset=ds, n_hospitals=8, rounds_=12, seed=5, encrypted=False,
                                     attack="label_flip", malicious_fraction=0.25)
    wait(exp, lambda e: e.current_round >= 2 and 0 < e.hospitals_done < e.n_hospitals, timeout=120, poll=0.02)
    first.kill()
    celery_worker_process(concurrency=2, name="rescuer")
    exp = wait(exp, lambda e: e.status in ("finished", "failed"), timeout=240)
    assert exp.status == "finished", exp.error
    assert list(Round.objects.filter(experiment=exp).values_list("number", flat=True)) == list(range(1, 13))
    assert UpdateRecord.objects.filter(experiment=exp).count() == 12 * 8  # every update once
    assert ledger_verify().intact
