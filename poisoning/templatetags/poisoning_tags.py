from urllib.parse import urlencode

from django import template
from django.core.paginator import Paginator
from django.utils.safestring import mark_safe

from fedhealth import charts
from poisoning import labels, selectors

register = template.Library()


UPDATES_PER_PAGE = 100


@register.inclusion_tag("poisoning/_updates_table.html", takes_context=True)
def experiment_updates(context, experiment):
    """The per-update verdicts of an experiment, for its detail page: filtered and paged by the
    page's query string (round, status, truth, page)."""
    request = context["request"]
    filters = selectors.update_filters(request.GET)
    rounds = selectors.update_rounds(experiment=experiment)
    if not rounds:
        return {"exp": experiment, "any": False}
    page = Paginator(selectors.update_records(experiment=experiment, **filters), UPDATES_PER_PAGE).get_page(request.GET.get("page"))
    det = selectors.detection_metrics(experiment=experiment)
    matrix = None
    if det is not None and experiment.attack != "none":
        matrix = mark_safe(charts.confusion("Detection vs ground truth", det["tp"], det["fp"], det["fn"], det["tn"]))
    query = {k: v for k, v in (("round", filters["round_no"]), ("status", filters["status"]), ("truth", filters["truth"])) if v not in (None, "")}
    return {"exp": experiment, "any": True, "page": page, "records": page.object_list, "det": det, "matrix": matrix,
            "request": request, "filters": filters, "statuses": selectors.STATUSES, "truths": selectors.TRUTHS,
            "rounds": rounds,
            "csv_query": urlencode(query)}


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
