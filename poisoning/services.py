"""Writes of the poisoning app."""

from __future__ import annotations

from django.db import transaction

from .models import UpdateRecord

RECORD_FIELDS = ("malicious", "attack", "val_accuracy", "val_loss", "update_norm", "cosine", "status", "aggregated",
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
