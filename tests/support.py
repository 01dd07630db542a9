"""Helpers shared by the tests (fixtures live in the root conftest.py)."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PASSWORD = "Correct-Horse-42-battery"


def skip_or_fail(reason: str) -> None:
    """Service-backed tests skip on a bare machine but fail in CI (REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def worker_env() -> dict[str, str]:
    """Environment for a Celery worker subprocess that must see the test database."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"mysql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({"DATABASE_URL": url, "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_SETTINGS_MODULE": "fedhealth.settings"})
    return env


class WorkerProcess:
    """A real ``celery worker`` subprocess against the test database and the configured broker."""

    def __init__(self, concurrency: int = 1, name: str = "test") -> None:
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"celery-{name}-", suffix=".log", delete=False)
        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "fedhealth", "worker", "--loglevel=INFO",
             f"--concurrency={concurrency}", "--pool=prefork", f"--hostname={name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=root, env=worker_env(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                skip_or_fail(f"celery worker exited early:\n{self.output()[-3000:]}")
            if "ready." in self.output():
                return
            time.sleep(0.2)
        self.stop()
        skip_or_fail(f"celery worker not ready after {timeout}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        with open(self.log.name) as fh:
            return fh.read()

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would."""
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def submit(page, selector: str = "button[type=submit]") -> None:
    """Click a button (or link) that loads a new page, and wait until the server's answer is the page.

    A click only starts the navigation: reading the page right after it can read the old document
    or an empty one that is still arriving."""
    with page.expect_navigation():
        page.click(selector)


def login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    submit(page)
