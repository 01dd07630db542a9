from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from fedcore.attacks import ATTACKS
from fedcore.data import (
    MAX_COLUMN_NAME_LENGTH,
    MAX_COLUMNS,
    DataError,
    feature_value,
    format_size,
    plausible_range,
)
from fedcore.rounds import DEFENSES
from fedhealth.fields import PlainIntegerField

from .models import Dataset, value_range
from .templatetags.fh_format import attack_label

# the launch form's longer descriptions (tables use the short labels of fh_format)
DEFENSE_CHOICES = {
    "verification": "Verification before aggregation (reference papers)", "none": "None (plain FedAvg)",
    "krum": "Krum", "multi_krum": "Multi-Krum", "median": "Coordinate-wise median", "trimmed_mean": "Trimmed mean",
    "fltrust": "FLTrust (server root dataset)",
}


class FeatureField(forms.Field):
    """A feature's value, checked by fedcore.data.feature_value like the API and the CSV batch."""

    def __init__(self, feature: dict, **kwargs) -> None:
        self.minimum, self.maximum = feature["min"], feature["max"]
        lo, hi = plausible_range(self.minimum, self.maximum)
        super().__init__(widget=forms.NumberInput(attrs={"min": lo, "max": hi, "step": "1" if feature.get("integer") else "any"}),
                         **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return feature_value(value, self.minimum, self.maximum)
        except DataError as exc:
            raise ValidationError(exc.detail, code="invalid") from None


class FeatureForm(forms.Form):
    """One number field per dataset column, with its unit and a plausible range around the observed one."""

    # goes before every feature's field name: a subclass whose own fields lack it never collides with a feature
    feature_prefix = ""

    def __init__(self, features: list[dict], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.features = features
        for f in features:
            lo, hi = plausible_range(f["min"], f["max"])
            unit = f" ({f['unit']})" if f.get("unit") else ""
            label = f"{f['description']} — {f['name']}{unit}" if f.get("description") else f["name"] + unit
            self.fields[self.feature_prefix + f["name"]] = FeatureField(
                f, label=label, help_text=f"seen {f['min']:g} – {f['max']:g}; accepted {lo:g} – {hi:g}")

    def values(self) -> dict[str, float]:
        return {f["name"]: self.cleaned_data[self.feature_prefix + f["name"]] for f in self.features}


class UploadForm(forms.Form):
    name = forms.CharField(max_length=120)
    file = forms.FileField(help_text=f"CSV (comma, semicolon or tab), UTF-8, header row; up to {MAX_COLUMNS:,} columns "
                                     f"with names of at most {MAX_COLUMN_NAME_LENGTH} characters; "
                                     f"at most {format_size(settings.DATASET_UPLOAD_MAX_BYTES)}.")
    target_column = forms.CharField(max_length=MAX_COLUMN_NAME_LENGTH,
                                    help_text="The column holding the class label (e.g. diagnosis).")


class SyntheticForm(forms.Form):
    name = forms.CharField(max_length=120)
    n_rows = PlainIntegerField(label="Rows", min_value=20, max_value=1_000_000, initial=20_000)
    positive_fraction = forms.FloatField(label="Share of positive records", min_value=0.05, max_value=0.95, initial=0.3)
    seed = PlainIntegerField(min_value=0, max_value=2**31 - 1, initial=0)


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=120)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    model_kind = forms.ChoiceField(label="Model", choices=[("mlp", "MLP (64-32, ReLU, Adam)"), ("logreg", "Logistic regression")])
    n_hospitals = PlainIntegerField(label="Hospitals", **value_range("n_hospitals"), initial=10)
    rounds = PlainIntegerField(**value_range("rounds"), initial=10)
    partition = forms.ChoiceField(choices=[("iid", "IID"), ("dirichlet", "Non-IID (Dirichlet)")])
    alpha = forms.FloatField(label="Dirichlet alpha", **value_range("alpha"), initial=0.5,
                             help_text="Smaller = more skewed class mixes (non-IID only).")
    local_epochs = PlainIntegerField(**value_range("local_epochs"), initial=2)
    learning_rate = forms.FloatField(**value_range("learning_rate"), initial=0.01)
    batch_size = PlainIntegerField(**value_range("batch_size"), initial=32)
    seed = PlainIntegerField(**value_range("seed"), initial=0)
    attack = forms.ChoiceField(choices=[(k, attack_label(k)) for k in ATTACKS],
                               help_text="What malicious hospitals do.")
    malicious_fraction = forms.FloatField(label="Malicious fraction", **value_range("malicious_fraction"), initial=0.3)
    defense = forms.ChoiceField(choices=[(d, DEFENSE_CHOICES[d]) for d in DEFENSES])
    encrypted = forms.BooleanField(required=False, initial=True, label="Verify under SMPC (encrypted inference, secure aggregation)",
                                   help_text="Applies to verification before aggregation only; the other defenses run in plaintext.")
