#!/usr/bin/env bash
# `make run`: everything for the embedded default (or for DATABASE_URL / CELERY_BROKER_URL if set).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements.txt
PY=.venv/bin/python
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
mkdir -p var/log
$PY manage.py migrate --noinput
$PY manage.py ledger_init
$PY manage.py create_demo_accounts
$PY manage.py load_demo_data

echo ">> starting Celery worker (log: var/log/celery.log)"
.venv/bin/celery -A fedhealth worker --loglevel=INFO --concurrency="${WORKERS:-2}" >var/log/celery.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

echo
echo "   FedHealth is running at  http://$HOST:$PORT/   (Ctrl-C stops the web server and the worker)"
echo
$PY manage.py runserver "$HOST:$PORT" --noreload
