from django import template
from django.utils.safestring import mark_safe

from fedhealth import charts
from poisoning import labels, selectors

register = template.Library()


@register.inclusion_tag("poisoning/_updates_table.html")
def experiment_updates(experiment):
    """The per-update verdicts of an experiment, for its detail page."""
    records = selectors.update_records(experiment=experiment)
    det = selectors.detection_metrics(experiment=experiment)
    matrix = None
    if records and det is not None and experiment.attack != "none":
        matrix = mark_safe(charts.confusion("Detection vs ground truth", det["tp"], det["fp"], det["fn"], det["tn"]))
    return {"exp": experiment, "records": records, "det": det, "matrix": matrix}


@register.filter
def fixed(value, digits=3):
    """A number with ``digits`` decimals, rounded as the verdict reasons round it (Python's
    format), so that a score reads the same in its column and in the reason beside it."""
    try:
        return format(float(value), f".{int(digits)}f")
    except (TypeError, ValueError):
        return ""


@register.filter
def percent(value):
    """A fraction as a percentage with one decimal, as the verdict reasons give it."""
    try:
        return format(float(value), ".1%")
    except (TypeError, ValueError):
        return ""


register.filter("classifier_label", labels.classifier_label)
register.filter("source_label", labels.source_label)
register.filter("attack_label", labels.attack_label)
register.filter("defense_label", labels.defense_label)
