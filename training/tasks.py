"""Celery tasks: each takes ids, calls one service and owns its retries."""

from __future__ import annotations

import logging
import threading
from collections import deque

from celery import Task, shared_task
from celery.signals import worker_ready
from django.db import OperationalError

from . import services

log = logging.getLogger(__name__)


class ExperimentTask(Task):
    """A task of one experiment (its first argument). When it fails for good (the database stayed
    unreachable through every retry), the experiment fails visibly instead of hanging."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        experiment_id = args[0] if args else kwargs.get("experiment_id")
        try:
            services.experiment_fail(experiment_id=experiment_id,
                                     error=f"{self.name} failed after {self.max_retries} retries: {type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the database is still away: a worker restart resumes the run
            log.exception("experiment %s: could not record the failure of %s", experiment_id, self.name)


RETRY = {"base": ExperimentTask, "autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5,
         "acks_late": True}


_eager = threading.local()


def submit(task, *args) -> None:
    """``task.delay(*args)``. With eager tasks (tests, ``run_experiment --eager``) a task that
    submits another (a round finishing starts the next) would run it inside its own call, so
    the stack would grow with every round until Python refuses it; instead, tasks submitted
    while an eager task runs wait in a queue that the outermost submission works through."""
    if not task.app.conf.task_always_eager:
        task.delay(*args)
        return
    queue = getattr(_eager, "queue", None)
    if queue is not None:
        queue.append((task, args))
        return
    _eager.queue = queue = deque([(task, args)])
    try:
        while queue:
            next_task, next_args = queue.popleft()
            next_task.delay(*next_args)
    finally:
        _eager.queue = None


def _guard(experiment_id: int, fn, **kwargs) -> None:
    try:
        fn(experiment_id=experiment_id, **kwargs)
    except OperationalError:
        raise
    except Exception as exc:  # the experiment fails visibly instead of hanging
        log.exception("experiment %s failed", experiment_id)
        services.experiment_fail(experiment_id=experiment_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name="training.experiment_start", **RETRY)
def experiment_start(experiment_id: int) -> None:
    _guard(experiment_id, services.experiment_start)


@shared_task(name="training.experiment_centralised", **RETRY)
def experiment_centralised(experiment_id: int) -> None:
    _guard(experiment_id, services.experiment_centralised)


@shared_task(name="training.round_start", **RETRY)
def round_start(experiment_id: int, round_no: int, resume: bool = False) -> None:
    _guard(experiment_id, services.round_start, round_no=round_no, resume=resume)


@shared_task(name="training.round_train_hospital", **RETRY)
def round_train_hospital(experiment_id: int, round_no: int, hospital: int) -> None:
    _guard(experiment_id, services.round_train_hospital, round_no=round_no, hospital=hospital)


@shared_task(name="training.round_finish", **RETRY)
def round_finish(experiment_id: int, round_no: int) -> None:
    _guard(experiment_id, services.round_finish, round_no=round_no)


@shared_task(name="training.experiments_resume")
def experiments_resume() -> int:
    return services.experiments_resume()


@worker_ready.connect
def _resume_on_worker_start(sender=None, **kwargs) -> None:
    """A worker that (re)starts picks up experiments whose tasks died with a lost worker."""
    experiments_resume.delay()
