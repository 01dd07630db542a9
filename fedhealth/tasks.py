from celery import shared_task


@shared_task(name="fedhealth.ping")
def ping() -> str:
    """Health check: proves that a worker takes tasks from the configured broker."""
    return "pong"
