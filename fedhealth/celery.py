"""Celery application: one worker or many, on any machine that shares the database and broker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedhealth.settings")

app = Celery("fedhealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["fedhealth"])
