"""Celery application: one worker or many, on any machine that shares the database and broker."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedhealth.settings")

app = Celery("fedhealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["fedhealth"])


@worker_init.connect
@worker_process_init.connect
def one_math_thread_per_process(**_) -> None:
    """A worker's processes already share out the cores (``--concurrency``), so each computes
    with one BLAS/OpenMP thread. With a pool of threads per library in every process, the
    processes' threads fight over the same cores: on a 2-core machine with the other worker
    process busy, a hospital's local training took 33 ms instead of 16 ms
    (bench/bench_math_threads.py), and under heavier load a 20 x 4,000 matrix product took
    30-200 ms instead of about 1 ms. Set in the parent (``worker_init``, inherited by forked
    children) and again in each child (``worker_process_init``)."""
    import numpy  # noqa: F401  (threadpoolctl limits the libraries loaded so far:
    import sklearn.ensemble  # noqa: F401  numpy's OpenBLAS, SciPy's and scikit-learn's OpenMP)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
