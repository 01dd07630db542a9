"""Reads: dataset tables (cached per process), experiment data, results tables."""

from __future__ import annotations

import gzip
from functools import lru_cache

import numpy as np
from django.db.models import QuerySet

from fedcore import data as fdata
from fedcore import model as fmodel
from fedcore import rounds

from .models import Dataset, Experiment, Round


@lru_cache(maxsize=16)
def _table(dataset_id: int, fingerprint: str) -> fdata.Table:
    ds = Dataset.objects.get(pk=dataset_id)
    if ds.source == Dataset.Source.UPLOAD:
        # by the rules it was accepted under (an upload stored before they were versioned: the first)
        return fdata.read_csv_upload(gzip.decompress(bytes(ds.content)), ds.target_column, max_bytes=10**9,
                                     rules=ds.params.get("csv_rules", 1))
    if ds.source == Dataset.Source.SYNTHETIC:
        return fdata.synthetic_ehr(**ds.params)
    return fdata.load_builtin(ds.builtin_name)


def _fingerprint(ds: Dataset) -> str:
    """What a dataset's rows are made from (an upload's hash, or the generator's parameters, or
    the built-in's name): the key of the in-memory caches below."""
    return ds.content_sha256 or repr(sorted(ds.params.items())) + ds.builtin_name


def dataset_table(ds: Dataset) -> fdata.Table:
    """The dataset as arrays; workers keep the last few in memory across tasks."""
    return _table(ds.pk, _fingerprint(ds))


@lru_cache(maxsize=8)
def _federated(experiment_id: int, dataset_id: int, fingerprint: str, n: int, scheme: str, alpha: float, seed: int):
    ds = Dataset.objects.get(pk=dataset_id)
    return rounds.prepare(dataset_table(ds), n, scheme=scheme, alpha=alpha, seed=seed)


def federated_data(exp: Experiment) -> rounds.FederatedData:
    ds = exp.dataset
    return _federated(exp.pk, ds.pk, _fingerprint(ds), exp.n_hospitals, exp.partition, exp.alpha, exp.seed)


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
    return [{"name": c.name, "min": c.minimum, "max": c.maximum, "unit": c.unit, "integer": c.integer,
             "description": c.description,
             "mean": float(t.X[:, j].mean()), "std": float(t.X[:, j].std())} for j, c in enumerate(t.columns)]


def column_labels(ds: Dataset) -> dict[str, dict]:
    """Per column, what it measures and its unit (a form's labels; no statistics computed)."""
    return {c.name: {"description": c.description, "unit": c.unit} for c in dataset_table(ds).columns}


def experiment_rounds(exp: Experiment) -> QuerySet[Round]:
    return exp.round_set.filter(status=Round.Status.FINISHED).order_by("number")


METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def accuracy_results() -> list[dict]:
    """One row per finished experiment: centralised vs federated test metrics."""
    rows = []
    for exp in Experiment.objects.filter(status=Experiment.Status.FINISHED).select_related("dataset").defer("global_vector").order_by("dataset__name", "-finished"):
        rows.append({"experiment": exp, "dataset": exp.dataset.name, "model": exp.model_kind, "defense": exp.defense,
                     "attack": exp.attack, "centralised": exp.centralised or {}, "federated": exp.final or {}})
    return rows


# --- the global model, as a hospital or a remote user receives it ---------------------------

def current_global_model() -> Experiment | None:
    """The global model remote users get risk estimates from: the one the provider chose most
    recently among finished experiments (never simply the newest run, which may be a simulated
    attack)."""
    return (Experiment.objects.filter(status=Experiment.Status.FINISHED, global_vector__isnull=False,
                                      served_since__isnull=False)
            .select_related("dataset").order_by("-served_since", "-pk").first())


def global_model_check(exp: Experiment) -> dict:
    """Hash the model as delivered and check it against the hash sealed on the ledger for its
    last round; ``vector`` is the model that was hashed."""
    from ledger.selectors import verify_model_hash

    vector = global_vector(exp)
    digest = rounds.model_hash(vector)
    ok, message = verify_model_hash(experiment=exp.ledger_key, round_no=exp.rounds, model_hash=digest)
    return {"hash": digest, "ok": ok, "message": message, "round": exp.rounds, "vector": vector}


def disease_risk(exp: Experiment, values: dict[str, float], check: dict | None = None) -> dict[str, float]:
    """Class probabilities of one record under the experiment's global model, the very vector
    that ``check`` (:func:`global_model_check`, made here if not given) hashed and found on the
    ledger; refuses an unverified model."""
    check = check or global_model_check(exp)
    if not check["ok"]:
        raise ValueError(f"the global model failed its ledger check: {check['message']}")
    cfg = round_config(exp)
    scaler = federated_data(exp).scaler
    x = np.asarray([[float(values[c]) for c in exp.dataset.feature_names]])
    weights = fmodel.unflatten(cfg.spec, check["vector"])
    proba = fmodel.predict_proba(cfg.spec, weights, scaler.transform(x))[0]
    return dict(zip(exp.dataset.class_names, (float(p) for p in proba), strict=True))


# the settings that make two experiments comparable apart from their attack and defense
COMPARABLE = ("dataset_id", "model_kind", "n_hospitals", "rounds", "partition", "alpha", "local_epochs",
              "learning_rate", "batch_size", "seed")


def reference_runs(exp: Experiment) -> dict[str, Experiment | None]:
    """The clean run (no attack) and the undefended run (same attack, plain FedAvg) of the same
    setting, each the newest finished one, else the newest still queued or running (a failed or
    cancelled one is no reference: it can be launched again); an undefended run is its own
    undefended reference."""
    same = Experiment.objects.filter(**{f: getattr(exp, f) for f in COMPARABLE}).exclude(pk=exp.pk).order_by("-created", "-pk")

    def newest(runs):
        return runs.filter(status=Experiment.Status.FINISHED).first() or runs.filter(status__in=Experiment.ACTIVE).first()

    undefended = exp if exp.attacked_undefended else newest(
        same.filter(attack=exp.attack, malicious_fraction=exp.malicious_fraction, defense="none"))
    return {"clean": newest(same.filter(attack="none")), "undefended": undefended}


def accuracy_recovered(exp: Experiment) -> dict | None:
    """Final accuracy defended vs undefended vs clean, and the share of the lost accuracy the defense won back."""
    if exp.attack == "none" or exp.defense == "none":  # nothing defended, nothing recovered
        return None
    if exp.status in (Experiment.Status.FAILED, Experiment.Status.CANCELLED):  # and no final accuracy to compare
        return None
    refs = reference_runs(exp)

    def acc(e):
        return (e.final or {}).get("accuracy") if e is not None and e.status == Experiment.Status.FINISHED else None

    defended, undefended, clean = acc(exp), acc(refs["undefended"]), acc(refs["clean"])
    recovered = None
    if None not in (defended, undefended, clean) and clean - undefended > 1e-9:
        recovered = (defended - undefended) / (clean - undefended)
    return {"defended": defended, "undefended": undefended, "clean": clean, "recovered": recovered, **refs}
