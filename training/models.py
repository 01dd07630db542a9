from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from fedcore import rounds
from fedcore.data import MAX_COLUMN_NAME_LENGTH

# The ranges of an experiment's settings, in one place: the model's validators (so that
# experiment_create refuses what is outside them, whoever calls it), the form and the API.
LIMITS = {
    "n_hospitals": (2, 1000), "rounds": (1, 200), "alpha": (0.01, 1000.0), "local_epochs": (1, 50),
    "learning_rate": (1e-5, 1.0), "batch_size": (1, 1024), "seed": (0, 2**31 - 1), "malicious_fraction": (0.0, 0.49),
}


def within(name: str) -> list:
    low, high = LIMITS[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


def value_range(name: str) -> dict:
    """``min_value`` and ``max_value`` of a form or serializer field for the setting ``name``."""
    low, high = LIMITS[name]
    return {"min_value": low, "max_value": high}


class Dataset(models.Model):
    class Source(models.TextChoices):
        BUILTIN = "builtin", "Built-in"
        SYNTHETIC = "synthetic", "Synthetic EHR"
        UPLOAD = "upload", "Uploaded CSV"

    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    builtin_name = models.CharField(max_length=40, blank=True)
    params = models.JSONField(default=dict, blank=True)
    content = models.BinaryField(null=True, blank=True, help_text="gzip-compressed CSV of an upload")
    content_sha256 = models.CharField(max_length=64, blank=True)
    target_column = models.CharField(max_length=MAX_COLUMN_NAME_LENGTH)
    n_rows = models.PositiveIntegerField()
    n_features = models.PositiveIntegerField()
    feature_names = models.JSONField(default=list)
    class_names = models.JSONField(default=list)
    class_counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Experiment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="experiments")
    model_kind = models.CharField(max_length=10, default="mlp")
    n_hospitals = models.PositiveIntegerField(default=10, validators=within("n_hospitals"))
    rounds = models.PositiveIntegerField(default=10, validators=within("rounds"))
    partition = models.CharField(max_length=12, default="iid")
    alpha = models.FloatField(default=0.5, validators=within("alpha"))
    local_epochs = models.PositiveIntegerField(default=2, validators=within("local_epochs"))
    learning_rate = models.FloatField(default=0.01, validators=within("learning_rate"))
    batch_size = models.PositiveIntegerField(default=32, validators=within("batch_size"))
    seed = models.PositiveIntegerField(default=0, validators=within("seed"))
    attack = models.CharField(max_length=20, default="none")
    malicious_fraction = models.FloatField(default=0.0, validators=within("malicious_fraction"))
    defense = models.CharField(max_length=20, default="verification")
    encrypted = models.BooleanField(default=True)
    config = models.JSONField(default=dict, help_text="fedcore.rounds.RoundConfig as JSON")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    current_round = models.PositiveIntegerField(default=0)
    hospitals_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    global_vector = models.BinaryField(null=True, blank=True)
    centralised = models.JSONField(null=True, blank=True)
    final = models.JSONField(null=True, blank=True)
    detection = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    served_since = models.DateTimeField(
        null=True, blank=True,
        help_text="When the provider chose this experiment's global model for remote users' risk estimates "
                  "(served once finished; the newest choice wins)")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    @property
    def percent(self) -> int:
        if self.status == self.Status.FINISHED:
            return 100
        total = self.rounds * self.n_hospitals
        done = max(0, self.current_round - 1) * self.n_hospitals + self.hospitals_done
        return int(100 * min(done, total) / total) if total else 0

    @property
    def n_malicious(self) -> int:
        """How many hospitals attack: the fraction asked for, rounded to whole hospitals."""
        return len((self.config or {}).get("malicious", ()))

    @property
    def ledger_key(self) -> str:
        return str(self.pk)

    @property
    def classifies_updates(self) -> bool:
        """Whether the defense predicts a status per update, so that detection scores mean something."""
        return self.defense not in rounds.NON_CLASSIFYING

    @property
    def attacked_undefended(self) -> bool:
        """A simulated attack met by plain FedAvg: its global model is never served to remote users."""
        return self.attack != "none" and self.defense == "none"


class Round(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Local training"
        AGGREGATING = "aggregating", "Verifying and aggregating"
        FINISHED = "finished", "Finished"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="round_set")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TRAINING)
    metrics = models.JSONField(default=dict)
    global_hash = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="training_round_once")]


class HospitalUpdate(models.Model):
    """A hospital's signed local update, staged until its round is aggregated."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="updates")
    round_no = models.PositiveIntegerField()
    hospital = models.PositiveIntegerField()
    vector = models.BinaryField()
    n_samples = models.PositiveIntegerField()
    malicious = models.BooleanField(default=False)
    attack = models.CharField(max_length=20, blank=True)
    update_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=256)
    seconds = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "round_no", "hospital"], name="training_update_once")]


class HospitalKey(models.Model):
    """A hospital's ECDSA P-256 key pair in one experiment, generated at its first update: the
    private key stored encrypted (PKCS#8, the passphrase of the ledger authorities' keys), the
    public key what the verifier checks its updates' signatures against."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="hospital_keys")
    hospital = models.PositiveIntegerField()
    public_pem = models.TextField()
    private_pem_encrypted = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "hospital"], name="training_hospital_key_once")]

    def __str__(self) -> str:
        return f"experiment {self.experiment_id} hospital {self.hospital}"
