from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from fedcore.data import format_size
from fedhealth.fields import PlainIntegerField
from training.forms import FeatureForm
from training.models import Dataset
from training.selectors import column_labels

from .models import Detector


class DetectorTrainForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), empty_label=None)
    poison_fraction = forms.FloatField(label="Share of poisoned records", min_value=0.05, max_value=0.45, initial=0.2,
                                       help_text="Half are label flips, half tampered features.")
    seed = PlainIntegerField(min_value=0, max_value=2**31 - 1, initial=0)


class PredictForm(FeatureForm):
    """The record's clinical values and its recorded diagnosis; ``record`` (a prediction's inputs) fills it in.

    The values are the fields value-<feature>, so no feature (one named diagnosis or detector, say)
    can take the name of the recorded-diagnosis field or of the page's detector field.
    """

    feature_prefix = "value-"

    def __init__(self, detector: Detector, *args, record: dict | None = None, **kwargs) -> None:
        ranges = detector.feature_ranges
        if record:
            kwargs["initial"] = {**{self.feature_prefix + f["name"]: record.get(f["name"]) for f in ranges["features"]},
                                 "diagnosis": record.get(ranges["target"])}
        # labelled as the risk form labels the same dataset (what each column measures, its unit);
        # the accepted ranges stay the predictor's
        labels = column_labels(detector.dataset)
        features = [{**f, **labels.get(f["name"], {})} for f in ranges["features"]]
        super().__init__(features, *args, **kwargs)
        self.detector = detector
        self.fields["diagnosis"] = forms.ChoiceField(label=f"Recorded {ranges['target']}",
                                                     choices=[(c, c) for c in ranges["classes"]])


def batch_file_size(upload) -> None:
    """Refuse a batch CSV larger than PREDICTION_BATCH_MAX_BYTES by its size, before anything reads it."""
    if upload.size > settings.PREDICTION_BATCH_MAX_BYTES:
        raise ValidationError(f"The file is larger than allowed; the limit is {format_size(settings.PREDICTION_BATCH_MAX_BYTES)}.",
                              code="too_large")


class BatchForm(forms.Form):
    file = forms.FileField(validators=[batch_file_size],
                           help_text="CSV with a header: every feature column and the recorded diagnosis; at most 10,000 "
                                     f"records and {format_size(settings.PREDICTION_BATCH_MAX_BYTES)}.")
