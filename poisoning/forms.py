from __future__ import annotations

from django import forms

from training.models import Dataset

from .models import Detector


class DetectorTrainForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), empty_label=None)
    poison_fraction = forms.FloatField(label="Share of poisoned records", min_value=0.05, max_value=0.45, initial=0.2,
                                       help_text="Half are label flips, half tampered features.")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)


class PredictForm(forms.Form):
    """One field per feature of the detector's dataset, with its plausible range and unit."""

    # values outside the observed range by more than this many ranges are refused as implausible
    RANGE_SLACK = 1.0

    def __init__(self, detector: Detector, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.detector = detector
        ranges = detector.feature_ranges
        for f in ranges["features"]:
            span = (f["max"] - f["min"]) or 1.0
            lo, hi = f["min"] - self.RANGE_SLACK * span, f["max"] + self.RANGE_SLACK * span
            label = f["name"] + (f" ({f['unit']})" if f["unit"] else "")
            self.fields[f["name"]] = forms.FloatField(
                label=label, min_value=round(lo, 6), max_value=round(hi, 6),
                help_text=f"seen {f['min']:g} – {f['max']:g}",
                widget=forms.NumberInput(attrs={"step": "1" if f["integer"] else "any"}))
        self.fields["diagnosis"] = forms.ChoiceField(label=f"Recorded {ranges['target']}",
                                                     choices=[(c, c) for c in ranges["classes"]])

    def values(self) -> dict[str, float]:
        return {f["name"]: self.cleaned_data[f["name"]] for f in self.detector.feature_ranges["features"]}


class BatchForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header: every feature column and the recorded diagnosis; at most 10,000 records.")
