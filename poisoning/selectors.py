"""Reads of the poisoning app."""

from __future__ import annotations

from django.db.models import Count, Q

from .models import UpdateRecord


def detection_metrics(*, experiment) -> dict:
    """Precision, recall and false-positive rate of the predicted status vs ground truth."""
    c = UpdateRecord.objects.filter(experiment=experiment).aggregate(
        tp=Count("id", filter=Q(malicious=True, status="Poisoned")),
        fp=Count("id", filter=Q(malicious=False, status="Poisoned")),
        fn=Count("id", filter=Q(malicious=True) & ~Q(status="Poisoned")),
        tn=Count("id", filter=Q(malicious=False) & ~Q(status="Poisoned")),
    )
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {**c, "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "false_positive_rate": fp / (fp + tn) if fp + tn else None}


def update_records(*, experiment, limit: int = 2000):
    return list(UpdateRecord.objects.filter(experiment=experiment).order_by("-round_no", "hospital")[:limit])
