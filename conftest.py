"""Shared fixtures: users of every role, against the real test database."""

from __future__ import annotations

import pytest

from tests.support import PASSWORD, WorkerProcess, skip_or_fail

__all__ = ["PASSWORD", "skip_or_fail"]


@pytest.fixture
def make_user(db):
    from accounts.models import Role, Status, User

    counter = {"n": 0}

    def make(role: str = Role.REMOTE_USER, status: str = Status.AUTHORIZED, **extra) -> User:
        counter["n"] += 1
        username = extra.pop("username", f"{role.split('_')[0]}{counter['n']}")
        user = User(
            username=username,
            email=extra.pop("email", f"{username}@example.org"),
            full_name=extra.pop("full_name", username.title()),
            role=role,
            status=status,
            is_active=status == Status.AUTHORIZED,
            **extra,
        )
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def provider(make_user):
    return make_user("service_provider")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


@pytest.fixture
def remote(make_user):
    return make_user("remote_user")


@pytest.fixture
def pending(make_user):
    return make_user("remote_user", "pending")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 with 1M iterations per test user would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: a ledger status cached by an earlier test's chain of
    the same height would otherwise stand for this test's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _celery_settings_restored():
    """Each test leaves Celery's eager settings as it found them (``run_experiment --eager`` sets
    them for its whole process): a later test must not run its tasks inline unasked."""
    from fedhealth.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start a real worker for one test; yields a factory so a test can start more (or restart)."""
    workers: list[WorkerProcess] = []

    def start(concurrency: int = 1, name: str = "test") -> WorkerProcess:
        worker = WorkerProcess(concurrency=concurrency, name=f"{name}{len(workers)}")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def eager():
    """Celery tasks run inline in the test process (the worker path has its own tests)."""
    from fedhealth.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
