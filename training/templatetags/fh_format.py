"""Display filters shared by the provider's pages: human labels for internal codes, abbreviated
hashes and consistently formatted numbers.

    {% load fh_format %}
    {{ exp.attack|attack_label }} · {{ r.global_hash|short_hash }} · {{ ratio|percent }} · {{ v|thousands }} · {{ name|clip }}
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html
from django.utils.text import Truncator

register = template.Library()

# One place for the short labels of the codes stored on an experiment, as tables and charts show
# them (the fields keep the codes; the launch form describes the defenses at more length).
MODEL_LABELS = {"mlp": "MLP", "logreg": "Logistic regression"}
ATTACK_LABELS = {
    "none": "None", "label_flip": "Label flipping", "backdoor": "Backdoor", "sign_flip": "Sign flipping",
    "gaussian_noise": "Gaussian noise", "scaling": "Scaling", "alie": "ALIE", "min_max": "Min-max",
}
DEFENSE_LABELS = {
    "verification": "Verification", "none": "None (FedAvg)", "krum": "Krum", "multi_krum": "Multi-Krum",
    "median": "Median", "trimmed_mean": "Trimmed mean", "fltrust": "FLTrust",
}
METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "roc_auc": "ROC AUC",
                 "backdoor_success": "Backdoor success"}
HASH_SHOWN = 12
TEXT_SHOWN = 40  # the characters of a free text (a column name, an uploaded cell) shown in a table


def code_label(mapping: dict[str, str], code) -> str:
    """The label of ``code`` in ``mapping``; a code it lacks still reads as words ("brand_new" -> "Brand new")."""
    code = "" if code is None else str(code)
    return mapping.get(code) or code.replace("_", " ").capitalize()


def labeller(mapping: dict[str, str]) -> Callable[[object], str]:
    """The one-argument label function (and template filter) of the codes in ``mapping``."""
    return functools.partial(code_label, mapping)


model_label = register.filter("model_label", labeller(MODEL_LABELS))
attack_label = register.filter("attack_label", labeller(ATTACK_LABELS))
defense_label = register.filter("defense_label", labeller(DEFENSE_LABELS))
metric_label = register.filter("metric_label", labeller(METRIC_LABELS))


@register.filter
def short_hash(value, shown: int = HASH_SHOWN):
    """A long hash as its first ``shown`` characters and an ellipsis; the full value stays in the
    title (hover) and in the element itself, so selecting and copying the cell copies all of it."""
    value = "" if value is None else str(value)
    shown = int(shown)
    if len(value) <= shown + 1:
        return format_html('<code class="hash">{}</code>', value)
    return format_html('<code class="hash" title="{}">{}<span class="hash-rest">{}</span>'
                       '<span class="hash-ellipsis" aria-hidden="true">…</span></code>', value, value[:shown], value[shown:])


@register.filter
def clip(value, shown: int = TEXT_SHOWN):
    """Free text (a column name, a cell as uploaded) cut to ``shown`` characters with an ellipsis, as
    truncatechars cuts it, the whole text in the title (hover): a name of thousands of characters
    must not make its table thousands of pixels wide."""
    text = "" if value is None else str(value)
    cut = Truncator(text).chars(int(shown))
    return text if cut == text else format_html('<span title="{}">{}</span>', text, cut)


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def percent(value, digits: int = 1) -> str:
    """A ratio (0.5) as a percentage ("50%"), trailing zeros dropped ("33.3%")."""
    number = _number(value)
    if number is None:
        return ""
    text = f"{number * 100:.{int(digits)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def thousands(value) -> str:
    """An integer with thousands separators (14,000), like the row counts."""
    number = _number(value)
    return "" if number is None else intcomma(int(round(number)))


@register.filter
def cell(value, integer: bool = False) -> str:
    """A data value in a table column: an integer column as integers (1,001), any other with three decimals."""
    number = _number(value)
    if number is None:
        return "" if value is None else str(value)
    if integer:
        return intcomma(int(round(number)))
    return f"{number:,.3f}"
