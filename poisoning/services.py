"""Writes of the poisoning app: update records, detector training, predictions."""

from __future__ import annotations

import hashlib
import pickle
import uuid

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from fedcore import recordpoison
from fedcore.data import Column, DataError, feature_value
from training.models import Dataset
from training.selectors import dataset_table

from .models import Detector, Prediction, UpdateRecord
from .selectors import detector_model

RECORD_FIELDS = ("malicious", "attack", "val_accuracy", "val_loss", "update_norm", "cosine", "rows_harmed", "status", "aggregated",
                 "encrypted", "verify_seconds", "signature_ok", "reason", "update_hash")


@transaction.atomic
def update_records_store(*, experiment_id: int, round_no: int, records: list[dict]) -> None:
    """Store the records of one round; idempotent on (experiment, round, hospital)."""
    existing = set(UpdateRecord.objects.filter(experiment_id=experiment_id, round_no=round_no)
                   .values_list("hospital", flat=True))
    UpdateRecord.objects.bulk_create([
        UpdateRecord(experiment_id=experiment_id, round_no=round_no, hospital=r["hospital"],
                     **{k: (r[k][:300] if k == "reason" else r[k]) for k in RECORD_FIELDS})
        for r in records if r["hospital"] not in existing
    ])


def detector_train(*, dataset: Dataset, poison_fraction: float = 0.2, seed: int = 0) -> Detector:
    """Train every record classifier on a poisoned copy of the dataset; the best becomes the active version."""
    table = dataset_table(dataset)
    report = recordpoison.train_detectors(table, fraction=poison_fraction, seed=seed)
    blob = pickle.dumps(report.detector, protocol=pickle.HIGHEST_PROTOCOL)
    ranges = {
        "target": table.target_name, "classes": list(table.class_names),
        "features": [{"name": c.name, "min": c.minimum, "max": c.maximum, "unit": c.unit, "integer": c.integer}
                     for c in table.columns],
        "n_train": report.n_train, "n_test": report.n_test,
    }
    with transaction.atomic():
        # lock the dataset row so that two trainings never take the same version number
        Dataset.objects.select_for_update().get(pk=dataset.pk)
        version = (Detector.objects.filter(dataset=dataset).aggregate(v=Max("version"))["v"] or 0) + 1
        Detector.objects.filter(dataset=dataset, active=True).update(active=False)
        return Detector.objects.create(
            dataset=dataset, version=version, classifier=report.best, scores=report.scores,
            poison_fraction=poison_fraction, model_blob=blob, model_sha256=hashlib.sha256(blob).hexdigest(),
            feature_ranges=ranges, active=True)


def detector_activate(*, detector: Detector) -> Detector:
    """Make an earlier (or the current) version of a dataset's predictor the active one, after
    checking that its stored model still matches its SHA-256 and loads."""
    try:
        detector_model(detector)
    except ValueError as exc:  # a damaged blob: refuse, keep the active version
        raise ValidationError(f"Version {detector.version} cannot be activated: {exc}") from None
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=detector.dataset_id)
        Detector.objects.filter(dataset_id=detector.dataset_id, active=True).exclude(pk=detector.pk).update(active=False)
        Detector.objects.filter(pk=detector.pk).update(active=True)
    detector.active = True
    return detector


def _store(*, user, detector: Detector, X: np.ndarray, diagnosis: np.ndarray, rows: list[dict], source: str,
           batch: str = "", uploaded: list | None = None) -> list[Prediction]:
    try:
        model = detector_model(detector)
    except ValueError as exc:  # a damaged stored model: the user is told, nothing is stored
        raise DataError(f"predictor {detector.dataset.name} v{detector.version} cannot predict: {exc} "
                        "(the service provider can retrain it or activate another version)") from None
    results = model.predict(X, diagnosis)
    uploaded = uploaded or [[] for _ in rows]
    with transaction.atomic():
        return Prediction.objects.bulk_create([
            Prediction(user=user, detector=detector, dataset_name=detector.dataset.name, inputs=row, uploaded=cells,
                       status=r.status, probability=r.probability, reasons=r.reasons, source=source, batch=batch)
            for row, cells, r in zip(rows, uploaded, results, strict=True)
        ])


def prediction_create(*, user, detector: Detector, values: dict, diagnosis: str, source: str = "form") -> Prediction:
    """Predict one record's status; ``values`` has every feature, ``diagnosis`` is a class name.

    Every value is checked by fedcore.data.feature_value, as on the form and in a CSV batch; the
    DataError names each wrong one.
    """
    ranges = detector.feature_ranges
    names = [f["name"] for f in ranges["features"]]
    missing = [n for n in names if n not in values]
    if missing:
        raise DataError(f"missing value(s) for {', '.join(missing[:5])}")
    k = recordpoison.class_matcher(ranges["classes"])(str(diagnosis))  # as a batch reads it: "Benign" is "benign"
    if k is None:
        raise DataError(f"'{diagnosis}' is not one of {', '.join(ranges['classes'])}", column=ranges["target"])
    diagnosis = ranges["classes"][k]
    checked, wrong = {}, []
    for f in ranges["features"]:
        try:
            checked[f["name"]] = feature_value(values[f["name"]], f["min"], f["max"])
        except DataError as exc:
            wrong.append(f"'{f['name']}': {exc.detail}")
    if wrong:
        raise DataError("; ".join(wrong))
    return _store(user=user, detector=detector, X=np.asarray([[checked[n] for n in names]]),
                  diagnosis=np.asarray([ranges["classes"].index(diagnosis)]),
                  rows=[{**checked, ranges["target"]: diagnosis}], source=source)[0]


def predictions_batch(*, user, detector: Detector, content: bytes, source: str = "batch") -> str:
    """Validate a whole CSV of records, then predict and store them all; returns the batch id."""
    ranges = detector.feature_ranges
    records = recordpoison.read_records_csv(content, [Column(f["name"], f["min"], f["max"]) for f in ranges["features"]],
                                            ranges["target"], ranges["classes"])
    batch = str(uuid.uuid4())
    _store(user=user, detector=detector, X=records.X, diagnosis=records.diagnosis, rows=records.rows, source=source,
           batch=batch, uploaded=records.uploaded)
    return batch
