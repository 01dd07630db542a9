"""Reads: dataset tables (cached per process), experiment data, results tables."""

from __future__ import annotations

import gzip
from functools import lru_cache

import numpy as np
from django.db.models import QuerySet

from fedcore import data as fdata
from fedcore import rounds

from .models import Dataset, Experiment, Round


@lru_cache(maxsize=16)
def _table(dataset_id: int, fingerprint: str) -> fdata.Table:
    ds = Dataset.objects.get(pk=dataset_id)
    if ds.source == Dataset.Source.UPLOAD:
        return fdata.read_csv_upload(gzip.decompress(bytes(ds.content)), ds.target_column, max_bytes=10**9)
    if ds.source == Dataset.Source.SYNTHETIC:
        return fdata.synthetic_ehr(**ds.params)
    return fdata.load_builtin(ds.builtin_name)


def dataset_table(ds: Dataset) -> fdata.Table:
    """The dataset as arrays; workers keep the last few in memory across tasks."""
    return _table(ds.pk, ds.content_sha256 or repr(sorted(ds.params.items())) + ds.builtin_name)


@lru_cache(maxsize=8)
def _federated(experiment_id: int, dataset_id: int, fingerprint: str, n: int, scheme: str, alpha: float, seed: int):
    ds = Dataset.objects.get(pk=dataset_id)
    return rounds.prepare(dataset_table(ds), n, scheme=scheme, alpha=alpha, seed=seed)


def federated_data(exp: Experiment) -> rounds.FederatedData:
    ds = exp.dataset
    return _federated(exp.pk, ds.pk, ds.content_sha256 + ds.builtin_name + repr(sorted(ds.params.items())),
                      exp.n_hospitals, exp.partition, exp.alpha, exp.seed)


def round_config(exp: Experiment) -> rounds.RoundConfig:
    return rounds.RoundConfig.from_dict(exp.config)


def global_vector(exp: Experiment) -> np.ndarray:
    return np.frombuffer(bytes(exp.global_vector), dtype="<f8").copy()


def dataset_preview(ds: Dataset, rows: int = 8) -> tuple[list[str], list[list]]:
    t = dataset_table(ds)
    header = [*t.feature_names[:12], t.target_name]
    body = [[*(round(float(v), 3) for v in t.X[i, :12]), t.class_names[t.y[i]]] for i in range(min(rows, len(t.y)))]
    return header, body


def dataset_columns(ds: Dataset) -> list[dict]:
    t = dataset_table(ds)
    return [{"name": c.name, "min": c.minimum, "max": c.maximum, "unit": c.unit,
             "mean": float(t.X[:, j].mean()), "std": float(t.X[:, j].std())} for j, c in enumerate(t.columns)]


def experiment_rounds(exp: Experiment) -> QuerySet[Round]:
    return exp.round_set.filter(status=Round.Status.FINISHED).order_by("number")


METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def accuracy_results() -> list[dict]:
    """One row per finished experiment: centralised vs federated test metrics."""
    rows = []
    for exp in Experiment.objects.filter(status=Experiment.Status.FINISHED).select_related("dataset").order_by("dataset__name", "-finished"):
        rows.append({"experiment": exp, "dataset": exp.dataset.name, "model": exp.model_kind, "defense": exp.defense,
                     "attack": exp.attack, "centralised": exp.centralised or {}, "federated": exp.final or {}})
    return rows
