"""Project-level guarantees: production settings, layering of fedcore, services reachable."""

from __future__ import annotations

import ast
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser tests allow Django's ORM inside Playwright's event loop for their own
    # process only; a deployment never sets that flag, so the child must not inherit it.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**inherited, **env},
        capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env={
            "FEDHEALTH_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "fedhealth.example",
            "LEDGER_AUTHORITY_PASSPHRASE": secrets.token_urlsafe(16),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
            "FEDHEALTH_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = _manage(
        "check",
        env={"FEDHEALTH_ENV": "production", "SECRET_KEY": "", "FEDHEALTH_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_local_secret_key_is_generated_once_into_var(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {**os.environ, "FEDHEALTH_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "fedhealth.settings", "SECRET_KEY": ""}
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", "import django; django.setup(); " + code], cwd=ROOT, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    first, second = run(), run()
    assert first == second == (tmp_path / "secret_key").read_text().strip()
    assert len(first) >= 50


def test_fedcore_never_imports_django_or_celery():
    offenders = []
    for path in (ROOT / "fedcore").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in {"django", "celery", "rest_framework", "accounts", "training", "poisoning", "ledger", "fedhealth"}]
    assert not offenders, offenders
    # and importing every module of it at run time pulls neither in
    probe = (
        "import importlib, pkgutil, sys, fedcore\n"
        "for m in pkgutil.walk_packages(fedcore.__path__, 'fedcore.'): importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})


def test_database_is_the_configured_one(settings):
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("DATABASE_URL", "").startswith("mysql"):
        assert engine.endswith("mysql")
        assert settings.DATABASES["default"]["OPTIONS"]["charset"] == "utf8mb4"
    else:
        assert engine.endswith("sqlite3")


@pytest.mark.services
def test_configured_broker_is_reachable():
    from fedhealth.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # pragma: no cover - depends on the machine
        skip_or_fail(f"broker {app.conf.broker_url}: {exc}")
