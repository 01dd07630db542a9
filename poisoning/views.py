from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.permissions import PROVIDER, REMOTE, has_role, role_required
from fedcore.data import DataError
from fedhealth import charts
from fedhealth.csvexport import stream_csv
from training.models import Experiment

from . import selectors, services
from .forms import BatchForm, DetectorTrainForm, PredictForm
from .labels import classifier_label
from .models import Detector

SCORE_KEYS = ("accuracy", "precision", "recall", "f1")


def _filtered(request: HttpRequest, **extra):
    return selectors.predictions(**selectors.prediction_filters(request.GET), **extra)


# --- provider: detectors --------------------------------------------------------------------

def _detector_page(request: HttpRequest, form: DetectorTrainForm) -> dict:
    """The predictors page's context, for the page itself and for a training form sent back with errors.

    The predictor shown is ?detector=<id> (the train form posts to a URL that carries it), else the first.
    """
    detectors = list(selectors.active_detectors())
    chosen = None
    if detectors:
        wanted = request.GET.get("detector")
        chosen = next((d for d in detectors if str(d.pk) == wanted), detectors[0])
    chart = None
    if chosen:
        names = list(chosen.scores)
        chart = mark_safe(charts.grouped_bars(
            f"Poisoning-status classifiers on {chosen.dataset.name} (v{chosen.version})",
            [classifier_label(n) for n in names], {k: [chosen.scores[n][k] for n in names] for k in SCORE_KEYS}, "score"))
    return {"detectors": detectors, "chosen": chosen, "chart": chart, "form": form, "keys": SCORE_KEYS,
            "history": selectors.detector_versions(dataset=chosen.dataset) if chosen else []}


@role_required(PROVIDER)
def detector_list(request: HttpRequest) -> HttpResponse:
    context = _detector_page(request, DetectorTrainForm())
    if context["chosen"]:  # the train form starts on the dataset of the predictor being looked at
        context["form"] = DetectorTrainForm(initial={"dataset": context["chosen"].dataset_id})
    return render(request, "poisoning/detector_list.html", context)


@role_required(PROVIDER)
@require_POST
def detector_train(request: HttpRequest) -> HttpResponse:
    form = DetectorTrainForm(request.POST)
    if not form.is_valid():
        return render(request, "poisoning/detector_list.html", _detector_page(request, form), status=400)
    try:
        det = services.detector_train(dataset=form.cleaned_data["dataset"], poison_fraction=form.cleaned_data["poison_fraction"],
                                      seed=form.cleaned_data["seed"])
    except (DataError, ValueError) as exc:
        messages.error(request, f"Could not train on this dataset: {exc}")
        return redirect("poisoning:detector_list")
    messages.success(request, f"{det.dataset.name}: version {det.version} is active ({classifier_label(det.classifier)}, "
                              f"F1 {det.scores[det.classifier]['f1']:.3f}).")
    return redirect(f"{reverse('poisoning:detector_list')}?detector={det.pk}")


@role_required(PROVIDER)
@require_POST
def detector_activate(request: HttpRequest, pk: int) -> HttpResponse:
    det = get_object_or_404(Detector.objects.select_related("dataset"), pk=pk)
    try:
        services.detector_activate(detector=det)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{det.dataset.name}: version {det.version} is active again ({classifier_label(det.classifier)}); "
                                  "remote users' predictions use it from now on.")
    return redirect(f"{reverse('poisoning:detector_list')}?detector={det.pk}")


# --- remote user: predict -------------------------------------------------------------------

NOT_STORED = "Nothing was stored: check the values and send them again."


def _chosen_detector(request: HttpRequest, detectors: list[Detector]) -> tuple[Detector | None, str]:
    """The predictor asked for, and a note when it has been replaced by a newer version of the
    same dataset's predictor since the page was loaded (then that one is used, and a form sent
    for the old one is shown again, not stored)."""
    wanted = request.POST.get("detector") or request.GET.get("detector")
    if wanted:
        found = next((d for d in detectors if str(d.pk) == wanted), None)
        if found is not None:
            return found, ""
        successor = selectors.active_successor(wanted)
        if successor is None:
            raise Http404("No active predictor with this id.")
        return successor, f"The {successor.dataset.name} predictor was updated to version {successor.version} after this page was loaded."
    return (detectors[0] if detectors else None), ""


@role_required(REMOTE)
def predict(request: HttpRequest) -> HttpResponse:
    """The form; a stored prediction redirects here with ?prediction=<id>, which shows its result (post/redirect/get)."""
    detectors = list(selectors.active_detectors())
    detector, replaced = _chosen_detector(request, detectors)
    result = None
    if request.method == "GET" and "prediction" in request.GET:
        result = selectors.own_prediction(user=request.user, pk=request.GET["prediction"])
        if result is None:
            raise Http404("No such prediction among yours.")
    shown = result.inputs if result and result.detector_id == getattr(detector, "pk", None) else None
    form = PredictForm(detector, request.POST or None, record=shown) if detector else None
    if replaced and request.method == "POST":
        form.is_valid()  # the values are shown again as sent, with their own errors if any
        form.add_error(None, f"{replaced} {NOT_STORED}")
    elif replaced:
        messages.info(request, replaced)
    elif request.method == "POST" and form is not None and form.is_valid():
        try:
            p = services.prediction_create(user=request.user, detector=detector, values=form.values(),
                                           diagnosis=form.cleaned_data["diagnosis"])
        except DataError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(f"{reverse('poisoning:predict')}?detector={detector.pk}&prediction={p.pk}#result")
    return render(request, "poisoning/predict.html", {
        "detectors": detectors, "detector": detector, "form": form, "result": result, "batch_form": BatchForm()},
        status=400 if request.method == "POST" else 200)


@role_required(REMOTE)
@require_POST
def predict_batch(request: HttpRequest) -> HttpResponse:
    detectors = list(selectors.active_detectors())
    detector, replaced = _chosen_detector(request, detectors)
    batch_form = BatchForm(request.POST, request.FILES)
    if replaced:
        batch_form.add_error(None, f"{replaced} {NOT_STORED}")
    elif detector is not None and batch_form.is_valid():
        try:
            batch = services.predictions_batch(user=request.user, detector=detector,
                                               content=batch_form.cleaned_data["file"].read())
        except DataError as exc:
            batch_form.add_error("file", f"Nothing was stored. {exc}")
        else:
            n = selectors.predictions(user=request.user, batch=batch).count()
            messages.success(request, format_html('{} record{} predicted. <a href="{}">Download the results as CSV</a>.',
                                                  n, pluralize(n), reverse("poisoning:batch_download", args=[batch])))
            return redirect(f"{reverse('poisoning:my_predictions')}?batch={batch}")
    return render(request, "poisoning/predict.html", {
        "detectors": detectors, "detector": detector, "form": PredictForm(detector) if detector else None,
        "batch_form": batch_form}, status=400)


@role_required(REMOTE)
def my_predictions(request: HttpRequest) -> HttpResponse:
    wanted = request.GET.get("batch", "")
    batch = selectors.batch_id(wanted)
    if wanted and not batch:
        messages.warning(request, f"“{wanted[:40]}” is not a batch id; showing all your predictions.")
    # a batch reads whole, in the order of its file: the n-th row shown is the file's n-th record
    filters = selectors.prediction_filters(request.GET)
    qs = (selectors.predictions(user=request.user, batch=batch).order_by("id") if batch
          else selectors.predictions(user=request.user, **filters))
    return render(request, "poisoning/my_predictions.html", {
        "page": Paginator(qs, 25).get_page(request.GET.get("page")), "batch": batch, "filters": filters,
        "filtered": any(filters.values()), "datasets": selectors.prediction_datasets(user=request.user),
        "statuses": selectors.STATUSES})


@role_required(REMOTE, PROVIDER)
def batch_download(request: HttpRequest, batch) -> HttpResponse:
    batch = str(batch)
    owner = None if has_role(request.user, PROVIDER) else request.user
    qs = selectors.predictions(user=owner)
    if not qs.filter(batch=batch).exists():
        raise Http404("No such batch among your predictions.")
    header, rows = selectors.batch_csv(batch, qs)
    return stream_csv(f"fedhealth-batch-{batch[:8]}.csv", header, rows)


# --- provider: all predictions, ratios, download ---------------------------------------------

@role_required(PROVIDER)
def prediction_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.prediction_filters(request.GET)
    return render(request, "poisoning/prediction_list.html", {
        "page": Paginator(selectors.predictions(**filters), 25).get_page(request.GET.get("page")), "filters": filters,
        "datasets": selectors.prediction_datasets(), "statuses": selectors.STATUSES,
        "query_string": request.GET.urlencode()})


@role_required(PROVIDER)
def download(request: HttpRequest) -> HttpResponse:
    return stream_csv("fedhealth-predictions.csv", selectors.CSV_HEADER, selectors.prediction_csv_rows(_filtered(request)))


@role_required(PROVIDER)
def experiment_updates_csv(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment, pk=pk)
    qs = selectors.update_records(experiment=exp, **selectors.update_filters(request.GET))
    return stream_csv(f"fedhealth-experiment-{exp.pk}-updates.csv", selectors.UPDATE_CSV_HEADER, selectors.update_csv_rows(qs))


def _ratios() -> dict:
    return {"predictions": selectors.prediction_ratios(), "experiments": selectors.experiment_ratios(),
            "experiments_shown": selectors.EXPERIMENTS_IN_RATIOS, "classifying": selectors.CLASSIFYING_DEFENSES,
            "non_classifying": selectors.NON_CLASSIFYING}


@role_required(PROVIDER)
def ratio_chart(request: HttpRequest) -> HttpResponse:
    ratios = _ratios()
    overall, datasets, exps = ratios["predictions"]["overall"], ratios["predictions"]["datasets"], ratios["experiments"]
    pie = bars = exp_bars = None
    if overall["total"]:
        pie = mark_safe(charts.pie("Poisoning status of all predictions", ["Poisoned", "Benign"], [overall["poisoned"], overall["benign"]],
                                    [charts.STATUS_COLORS["Poisoned"], charts.STATUS_COLORS["Benign"]]))
        bars = mark_safe(charts.grouped_bars("Share predicted Poisoned, per dataset", [d["label"] for d in datasets],
                                             {"poisoned ratio": [d["poisoned_ratio"] for d in datasets]}, "ratio"))
    if exps:
        exp_bars = mark_safe(charts.grouped_bars(
            "Updates per experiment: predicted Poisoned vs truly malicious", [e["label"] for e in exps],
            {"predicted Poisoned": [e["poisoned_ratio"] for e in exps],
             "truly malicious": [e["malicious"] / e["total"] if e["total"] else None for e in exps]}, "share of updates"))
    return render(request, "poisoning/ratio_chart.html", {**ratios, "pie": pie, "bars": bars, "exp_bars": exp_bars})


@role_required(PROVIDER)
def ratio_results(request: HttpRequest) -> HttpResponse:
    return render(request, "poisoning/ratio_results.html", _ratios())
