import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.services
def test_a_real_worker_takes_tasks_from_the_configured_broker(celery_worker_process):
    from fedhealth.tasks import ping

    worker = celery_worker_process()
    assert ping.delay().get(timeout=30) == "pong"
    assert "fedhealth.ping" in worker.output()



def test_each_worker_process_computes_with_one_math_thread():
    """Celery's worker signals run the limit in the parent and in every forked child: each process
    then has one BLAS/OpenMP thread per library, whatever the machine's core count."""
    from celery.signals import worker_init, worker_process_init

    from fedhealth.celery import one_math_thread_per_process

    for signal in (worker_init, worker_process_init):
        assert one_math_thread_per_process in [receiver() for _, receiver in signal.receivers]
    probe = ("import json, numpy, sklearn.ensemble, threadpoolctl\n"
             "from fedhealth.celery import one_math_thread_per_process\n"
             "threads = lambda: sorted({(p['internal_api'], p['num_threads']) for p in threadpoolctl.threadpool_info()})\n"
             "before = threads()\n"
             "one_math_thread_per_process(sender=None)\n"
             "print(json.dumps([before, threads()]))\n")
    env = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "PATH": os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    before, after = json.loads(out.stdout)
    assert before == [["openblas", 2], ["openmp", 2]]
    assert after == [["openblas", 1], ["openmp", 1]]  # every library of each kind
