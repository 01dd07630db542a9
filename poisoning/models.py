from django.conf import settings
from django.db import models


class UpdateRecord(models.Model):
    """Every update of every round: ground truth, scores, predicted status, aggregated or not."""

    experiment = models.ForeignKey("training.Experiment", on_delete=models.CASCADE, related_name="update_records")
    round_no = models.PositiveIntegerField()
    hospital = models.PositiveIntegerField()
    malicious = models.BooleanField(help_text="ground truth")
    attack = models.CharField(max_length=20, blank=True)
    # the scores are null for an update rejected before scoring (signature or values)
    val_accuracy = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    update_norm = models.FloatField(null=True, blank=True)
    cosine = models.FloatField(null=True, blank=True)
    rows_harmed = models.FloatField(null=True, blank=True,
                                    help_text="verification: fraction of validation rows the update moves away from their label")
    status = models.CharField(max_length=10, db_index=True)  # Poisoned / Benign
    aggregated = models.BooleanField()
    encrypted = models.BooleanField(default=False)
    verify_seconds = models.FloatField()
    signature_ok = models.BooleanField(null=True)
    reason = models.CharField(max_length=300)
    update_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["experiment", "round_no", "hospital"]
        constraints = [models.UniqueConstraint(fields=["experiment", "round_no", "hospital"], name="poisoning_record_once")]

    @property
    def verify_ms(self) -> float:
        return self.verify_seconds * 1000.0


class Detector(models.Model):
    """A versioned record-level poisoning-status predictor for one dataset."""

    dataset = models.ForeignKey("training.Dataset", on_delete=models.CASCADE, related_name="detectors")
    version = models.PositiveIntegerField()
    classifier = models.CharField(max_length=40)
    scores = models.JSONField(help_text="test scores of every classifier tried")
    poison_fraction = models.FloatField()
    model_blob = models.BinaryField()
    model_sha256 = models.CharField(max_length=64)
    feature_ranges = models.JSONField(default=dict)
    active = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [models.UniqueConstraint(fields=["dataset", "version"], name="poisoning_detector_version")]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.version} ({self.classifier})"


class Prediction(models.Model):
    class Status(models.TextChoices):
        POISONED = "Poisoned", "Poisoned"
        BENIGN = "Benign", "Benign"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="predictions")
    detector = models.ForeignKey(Detector, on_delete=models.PROTECT, related_name="predictions")
    dataset_name = models.CharField(max_length=120, db_index=True)
    inputs = models.JSONField()
    uploaded = models.JSONField(default=list, blank=True,
                                help_text="a batch record's cells as written: [column, text] pairs, every column in file order")
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    probability = models.FloatField(help_text="probability that the record is poisoned")
    reasons = models.JSONField(default=list)
    source = models.CharField(max_length=10, default="form")  # form / batch / api
    batch = models.CharField(max_length=36, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]

    @property
    def other_cells(self) -> list[tuple[str, str]]:
        """A batch record's uploaded cells that are neither a feature nor the diagnosis (a
        patient id, notes): what tells the uploader which of their rows this is."""
        return [(name, text) for name, text in self.uploaded if name not in self.inputs and text.strip()]

    @property
    def record_cells(self) -> list[tuple[str, str]]:
        """What tells which record this is: a batch record's other cells, else (a form's or an
        API call's record, or a batch without such cells) its values as predicted."""
        return self.other_cells or [(name, f"{value:g}" if isinstance(value, float) else str(value))
                                    for name, value in self.inputs.items()]
