import pytest


@pytest.mark.services
def test_a_real_worker_takes_tasks_from_the_configured_broker(celery_worker_process):
    from fedhealth.tasks import ping

    worker = celery_worker_process()
    assert ping.delay().get(timeout=30) == "pong"
    assert "fedhealth.ping" in worker.output()
