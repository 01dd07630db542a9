"""A task delivered again (Celery acks late: a worker process that dies mid-task has its task
redelivered), or retried, picks the run up where the lost delivery left it: no run hangs."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from training import services, tasks
from training.models import Experiment, Round

pytestmark = pytest.mark.django_db(transaction=True)


class Died(Exception):
    """The worker process dies after the task's commit, before it queued the next task."""


def _die(task, *args):
    raise Died


@pytest.fixture
def queued(monkeypatch):
    """What tasks submit, by task name: the broker, seen from the project (outside it)."""
    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(tasks, "submit", lambda task, *args: calls.append((task.name, args)))
    return calls


@pytest.fixture
def not_propagating():
    """Eager tasks keep their exceptions in their result, as a worker does, so that retries run."""
    from fedhealth.celery import app

    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = before


def _experiment(n_hospitals: int = 2) -> Experiment:
    ds = services.dataset_create_builtin(name="breast_cancer")
    return services.experiment_create(name="x", dataset=ds, model_kind="logreg", n_hospitals=n_hospitals, rounds_=2,
                                      seed=1, encrypted=False, launch=False)


def test_a_redelivered_last_hospital_queues_the_aggregation_its_first_delivery_did_not(monkeypatch, queued):
    exp = _experiment()
    services.experiment_start(experiment_id=exp.pk)
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=0)
    monkeypatch.setattr(tasks, "submit", _die)
    with pytest.raises(Died):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=1)
    assert Round.objects.get(experiment=exp, number=1).status == Round.Status.AGGREGATING
    monkeypatch.setattr(tasks, "submit", lambda task, *args: queued.append((task.name, args)))
    queued.clear()
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=1)  # the redelivery
    assert queued == [("training.round_finish", (exp.pk, 1))]
    services.round_finish(experiment_id=exp.pk, round_no=1)
    services.round_finish(experiment_id=exp.pk, round_no=1)  # queued twice, recorded once
    assert Round.objects.get(experiment=exp, number=1).status == Round.Status.FINISHED
    assert Experiment.objects.get(pk=exp.pk).current_round == 2


def test_a_redelivered_aggregation_queues_the_next_round_its_first_delivery_did_not(monkeypatch, queued):
    exp = _experiment()
    services.experiment_start(experiment_id=exp.pk)
    for h in range(2):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    monkeypatch.setattr(tasks, "submit", _die)
    with pytest.raises(Died):
        services.round_finish(experiment_id=exp.pk, round_no=1)
    monkeypatch.setattr(tasks, "submit", lambda task, *args: queued.append((task.name, args)))
    queued.clear()
    services.round_finish(experiment_id=exp.pk, round_no=1)  # the redelivery
    assert queued == [("training.round_start", (exp.pk, 2))]
    services.round_start(experiment_id=exp.pk, round_no=2)  # fans out round 2 (the group goes to the broker)
    queued.clear()
    services.round_finish(experiment_id=exp.pk, round_no=1)  # once round 2 exists, a late delivery queues nothing
    assert queued == []


def test_a_retried_start_fans_out_the_round_its_first_try_did_not(monkeypatch, queued, not_propagating):
    exp = _experiment()
    real, calls = services.round_start, []

    def locked_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(services, "round_start", locked_once)
    tasks.experiment_start.apply(args=[exp.pk])  # the try, then its retry (run at once when eager)
    assert len(calls) == 2
    assert Round.objects.filter(experiment=exp, number=1).exists()
    assert Experiment.objects.get(pk=exp.pk).status == Experiment.Status.RUNNING


def test_a_task_whose_retries_are_used_up_fails_its_experiment_visibly(monkeypatch, queued, not_propagating):
    exp = _experiment()
    services.experiment_start(experiment_id=exp.pk)
    for h in range(2):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "round_finish", locked)
    result = tasks.round_finish.apply(args=[exp.pk, 1])
    assert result.state == "FAILURE"
    exp.refresh_from_db()
    assert exp.status == Experiment.Status.FAILED
    assert exp.error.startswith("training.round_finish failed after 5 retries: OperationalError: database is locked")


def test_a_cancelled_run_keeps_the_progress_it_had(monkeypatch, queued):
    exp = _experiment(n_hospitals=3)
    services.experiment_start(experiment_id=exp.pk)
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=0)
    real = services.round_maybe_finish

    def cancelled_first(**kwargs):  # hospital 1 stored its update; Cancel came before its progress count
        services.experiment_cancel(experiment=Experiment.objects.get(pk=exp.pk))
        return real(**kwargs)

    monkeypatch.setattr(services, "round_maybe_finish", cancelled_first)
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=1)
    exp.refresh_from_db()
    assert (exp.status, exp.hospitals_done) == (Experiment.Status.CANCELLED, 1)


def test_a_round_started_twice_is_fanned_out_once_unless_resumed(monkeypatch, queued):
    """Duplicates must not multiply: two starts of a round would train each hospital twice, and
    the doubled last updates would queue doubled aggregations, each starting the next round."""
    import celery

    fanned: list[list[int]] = []

    class Group:
        def __init__(self, signatures):
            fanned.append([sig.args[2] for sig in signatures])

        def apply_async(self):
            pass

    monkeypatch.setattr(celery, "group", Group)
    exp = _experiment(n_hospitals=3)
    services.experiment_start(experiment_id=exp.pk)
    services.round_start(experiment_id=exp.pk, round_no=1)  # queued twice
    assert fanned == [[0, 1, 2]]
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=0)
    services.round_start(experiment_id=exp.pk, round_no=1, resume=True)  # a worker restarted: what is missing
    assert fanned == [[0, 1, 2], [1, 2]]
