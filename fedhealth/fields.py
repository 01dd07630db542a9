"""Whole-number input fields for forms and API serializers, read by fedcore.data.parse_whole_number.

Django's and DRF's IntegerField call int(), which also takes Python's other spellings: 1_0 is 10
and non-ASCII digits ("١٠", Arabic-Indic) are read as ASCII ones. A person typing a whole number
gets plain notation only (ASCII digits, an optional sign), as every other number in FedHealth.
min_value / max_value work as in the fields these extend.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

from fedcore.data import parse_whole_number

WHOLE_NUMBER_MESSAGE = "must be a whole number"


class PlainIntegerField(forms.IntegerField):
    """A form's whole number: plain ASCII digits with an optional sign ("10", "-3"), nothing else."""

    default_error_messages = {"invalid": "Must be a whole number, written with the digits 0-9 (e.g. 10)."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_whole_number(str(value))
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class PlainIntegerSerializerField(serializers.IntegerField):
    """An API whole number: a JSON integer, or text in plain ASCII digits with an optional sign.
    A boolean, any float (10.0 included: a whole number is written without a point), and text
    such as "1_0" or "١٠" are refused."""

    default_error_messages = {"invalid": WHOLE_NUMBER_MESSAGE}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, int):
            return data  # beyond min_value / max_value: their validators say so
        try:
            return parse_whole_number(data)
        except ValueError:
            self.fail("invalid")


def whole_number_argument(text: str) -> int:
    """A management command's whole-number option (argparse ``type=``), read like the fields above."""
    import argparse

    try:
        return parse_whole_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} {WHOLE_NUMBER_MESSAGE} (digits 0-9)") from None
