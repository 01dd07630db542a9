"""Reads of the poisoning app: detection metrics, detectors, predictions, ratios, CSV rows."""

from __future__ import annotations

import hashlib
import json
import pickle
import uuid
from collections.abc import Iterator
from functools import lru_cache

from django.db.models import Count, Q, QuerySet

from fedcore.recordpoison import RecordDetector
from fedcore.rounds import DEFENSES, NON_CLASSIFYING, detection_rates
from fedhealth.search import unmatchable

from .models import Detector, Prediction, UpdateRecord

STATUSES = ("Poisoned", "Benign")


def detection_metrics(*, experiment) -> dict | None:
    """Precision, recall and false-positive rate of the predicted status vs ground truth; None
    for a defense that predicts no status (none, median, trimmed mean: every update is used)."""
    if not experiment.classifies_updates:
        return None
    c = UpdateRecord.objects.filter(experiment=experiment).aggregate(
        tp=Count("id", filter=Q(malicious=True, status="Poisoned")),
        fp=Count("id", filter=Q(malicious=False, status="Poisoned")),
        fn=Count("id", filter=Q(malicious=True) & ~Q(status="Poisoned")),
        tn=Count("id", filter=Q(malicious=False) & ~Q(status="Poisoned")),
    )
    return detection_rates(c["tp"], c["fp"], c["fn"], c["tn"])


TRUTHS = ("malicious", "honest")


def update_filters(params) -> dict:
    """The updates table's filters (round, predicted status, ground truth) from a query string;
    a value that is not one of them is ignored."""
    round_no = params.get("round", "").strip()
    status, truth = params.get("status", "").strip(), params.get("truth", "").strip()
    return {"round_no": int(round_no) if round_no.isascii() and round_no.isdigit() and len(round_no) <= 9 else None,
            "status": status if status in STATUSES else "", "truth": truth if truth in TRUTHS else ""}


def update_records(*, experiment, round_no: int | None = None, status: str = "", truth: str = "") -> QuerySet[UpdateRecord]:
    """An experiment's update records, newest round first, filtered as :func:`update_filters` reads them."""
    qs = UpdateRecord.objects.filter(experiment=experiment)
    if round_no is not None:
        qs = qs.filter(round_no=round_no)
    if status:
        qs = qs.filter(status=status)
    if truth:
        qs = qs.filter(malicious=truth == "malicious")
    return qs.order_by("-round_no", "hospital")


def update_rounds(*, experiment) -> list[int]:
    """The rounds that have update records."""
    return list(UpdateRecord.objects.filter(experiment=experiment).order_by("round_no").values_list("round_no", flat=True).distinct())


UPDATE_CSV_HEADER = ["round", "hospital", "ground_truth", "attack", "val_accuracy", "val_loss", "update_norm", "cosine",
                     "rows_harmed", "status", "aggregated", "verified", "verify_ms", "signature", "reason", "update_sha256"]


def update_csv_rows(qs: QuerySet[UpdateRecord]) -> Iterator[list]:
    """Rows for the updates download, round by round, read in chunks."""
    for r in qs.order_by("round_no", "hospital").iterator(chunk_size=2000):
        verified = "not scored" if r.val_accuracy is None else "mpc" if r.encrypted else "plaintext"
        signature = "" if r.signature_ok is None else "valid" if r.signature_ok else "rejected"
        yield [r.round_no, r.hospital, "malicious" if r.malicious else "honest", r.attack, r.val_accuracy, r.val_loss,
               r.update_norm, r.cosine, r.rows_harmed, r.status, "yes" if r.aggregated else "no", verified,
               round(r.verify_ms, 3), signature, r.reason, r.update_hash]


# --- detectors ------------------------------------------------------------------------------

def active_detectors() -> QuerySet[Detector]:
    return Detector.objects.filter(active=True).select_related("dataset").order_by("dataset__name")


def active_successor(detector_id: str) -> Detector | None:
    """The active predictor of the dataset whose predictor (an older version, say) has this id."""
    if not (detector_id.isascii() and detector_id.isdigit() and len(detector_id) < 19):
        return None
    dataset = Detector.objects.filter(pk=int(detector_id)).values_list("dataset_id", flat=True).first()
    return active_detectors().filter(dataset_id=dataset).first() if dataset is not None else None


def detector_versions(*, dataset) -> QuerySet[Detector]:
    """Every version of a dataset's predictor, newest first, with how many predictions each made."""
    return (Detector.objects.filter(dataset=dataset).defer("model_blob")
            .annotate(n_predictions=Count("predictions")).order_by("-version"))


@lru_cache(maxsize=16)
def _load(pk: int, sha256: str) -> RecordDetector:
    blob = bytes(Detector.objects.values_list("model_blob", flat=True).get(pk=pk))
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ValueError(f"detector {pk}: stored model does not match its SHA-256; retrain it")
    try:
        model = pickle.loads(blob)  # noqa: S301 - written by detector_train into our own database, hash-checked
    except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle raises
        raise ValueError(f"detector {pk}: stored model does not load ({type(exc).__name__}); retrain it") from None
    if not isinstance(model, RecordDetector):
        raise ValueError(f"detector {pk}: stored model is not a record detector; retrain it")
    return model


def detector_model(detector: Detector) -> RecordDetector:
    return _load(detector.pk, detector.model_sha256)


# --- predictions ----------------------------------------------------------------------------

def predictions(*, user=None, status: str = "", dataset: str = "", query: str = "", batch: str = "") -> QuerySet[Prediction]:
    qs = Prediction.objects.select_related("user", "detector")
    if user is not None:
        qs = qs.filter(user=user)
    if status in STATUSES:
        qs = qs.filter(status=status)
    if dataset:
        qs = qs.filter(dataset_name=dataset)
    if batch:
        qs = qs.filter(batch=batch)
    if unmatchable(query):
        return qs.none()
    if query:
        qs = qs.filter(Q(user__username__icontains=query) | Q(user__full_name__icontains=query)
                       | Q(dataset_name__icontains=query) | Q(batch__startswith=query))
    return qs


def batch_id(value: str) -> str:
    """A batch id from a query string as it is stored (a lower-case UUID); "" if the value is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return ""


def own_prediction(*, user, pk: str) -> Prediction | None:
    """One of the user's predictions by its id as a query string gives it; None if not a number or not theirs."""
    if not pk.isascii() or not pk.isdigit() or len(pk) > 18:
        return None
    return predictions(user=user).filter(pk=int(pk)).first()


def prediction_filters(params) -> dict[str, str]:
    """The list filters (status, dataset, free-text query) from a page's or an API call's query string."""
    return {"status": params.get("status", "").strip()[:10], "dataset": params.get("dataset", "").strip()[:120],
            "query": params.get("q", "").strip()[:100]}


def prediction_datasets(*, user=None) -> list[str]:
    """The datasets predictions were made on (``user``'s only, if given), for a filter's choices."""
    qs = Prediction.objects.all() if user is None else Prediction.objects.filter(user=user)
    return list(qs.order_by("dataset_name").values_list("dataset_name", flat=True).distinct())


def _ratio_row(label: str, poisoned: int, benign: int, **extra) -> dict:
    total = poisoned + benign
    return {"label": label, "poisoned": poisoned, "benign": benign, "total": total,
            "poisoned_ratio": poisoned / total if total else None, **extra}


def prediction_ratios() -> dict:
    """Poisoned/Benign counts and ratio over all predictions and per dataset."""
    per = (Prediction.objects.values("dataset_name")
           .annotate(p=Count("id", filter=Q(status="Poisoned")), b=Count("id", filter=Q(status="Benign")))
           .order_by("dataset_name"))
    rows = [_ratio_row(r["dataset_name"], r["p"], r["b"]) for r in per]
    overall = _ratio_row("All predictions", sum(r["poisoned"] for r in rows), sum(r["benign"] for r in rows))
    return {"overall": overall, "datasets": rows}


EXPERIMENTS_IN_RATIOS = 20
CLASSIFYING_DEFENSES = tuple(d for d in DEFENSES if d not in NON_CLASSIFYING)


def experiment_ratios(limit: int = EXPERIMENTS_IN_RATIOS) -> list[dict]:
    """Per experiment, the newest ``limit`` whose defense predicts a status: updates predicted
    Poisoned / Benign, and the ground truth beside it. A defense that uses every validly signed
    update (none, median, trimmed mean) predicts nothing, so its ratio would read as a miss."""
    per = (UpdateRecord.objects.exclude(experiment__defense__in=NON_CLASSIFYING)
           .values("experiment_id", "experiment__name", "experiment__attack", "experiment__defense")
           .annotate(p=Count("id", filter=Q(status="Poisoned")), b=Count("id", filter=Q(status="Benign")),
                     m=Count("id", filter=Q(malicious=True)))
           .order_by("-experiment_id")[:limit])
    return [_ratio_row(f"#{r['experiment_id']} {r['experiment__name']}", r["p"], r["b"], experiment_id=r["experiment_id"],
                       attack=r["experiment__attack"], defense=r["experiment__defense"], malicious=r["m"]) for r in per]


CSV_HEADER = ["id", "created", "user", "dataset", "detector_version", "classifier", "source", "batch", "status",
              "probability_poisoned", "reasons", "inputs"]


def prediction_csv_rows(qs: QuerySet[Prediction]) -> Iterator[list]:
    """Rows for a CSV download, read from the database in chunks (never all in memory)."""
    for p in qs.order_by("id").iterator(chunk_size=2000):
        yield [p.pk, p.created.isoformat(timespec="seconds"), p.user.username, p.dataset_name, p.detector.version,
               p.detector.classifier, p.source, p.batch, p.status, round(p.probability, 6), " | ".join(p.reasons),
               json.dumps(p.inputs, sort_keys=True)]


def batch_csv(batch: str, qs: QuerySet[Prediction]) -> tuple[list[str], Iterator[list]]:
    """A batch as the user uploaded it, every column and cell as written (a patient id, notes),
    with status, probability and reasons appended; a batch stored before its cells were kept
    gives the values read."""
    first = qs.filter(batch=batch).order_by("id").first()
    as_written = bool(first and first.uploaded)
    columns = [name for name, _ in first.uploaded] if as_written else list(first.inputs) if first else []

    def rows():
        for p in qs.filter(batch=batch).order_by("id").iterator(chunk_size=2000):
            cells = [cell for _, cell in p.uploaded] if as_written else [p.inputs.get(c) for c in columns]
            yield [*cells, p.status, round(p.probability, 6), " | ".join(p.reasons)]

    added = []  # an uploaded column of the same name keeps its own: the prediction's is "predicted_<name>"
    for name in ("status", "probability_poisoned", "reasons"):
        while name in columns or name in added:
            name = "predicted_" + name
        added.append(name)
    return [*columns, *added], rows()
