from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.permissions import PROVIDER, role_required
from fedcore.data import DataError, format_size
from fedhealth import charts

from . import selectors, services
from .forms import ExperimentForm, SyntheticForm, UploadForm
from .models import Dataset, Experiment
from .templatetags.fh_format import attack_label, cell, defense_label


def _apply_errors(form, exc: Exception) -> None:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, str(exc) if isinstance(exc, DataError) else " ".join(getattr(exc, "messages", [str(exc)])))


@role_required(PROVIDER)
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "training/dataset_list.html", {
        "datasets": Dataset.objects.all(), "upload_form": UploadForm(), "synthetic_form": SyntheticForm()})


@role_required(PROVIDER)
def dataset_upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.DATASET_UPLOAD_MAX_BYTES:
            form.add_error("file", f"The file is larger than allowed; the limit is {format_size(settings.DATASET_UPLOAD_MAX_BYTES)}.")
        else:
            try:
                ds = services.dataset_create_upload(name=form.cleaned_data["name"], content=upload.read(),
                                                    target_column=form.cleaned_data["target_column"],
                                                    max_bytes=settings.DATASET_UPLOAD_MAX_BYTES, user=request.user)
            except (DataError, ValidationError) as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Dataset “{ds.name}” stored: {ds.n_rows:,} rows, {ds.n_features} features.")
                return redirect("training:dataset_detail", pk=ds.pk)
    return render(request, "training/dataset_form.html", {"form": form, "kind": "upload"})


@role_required(PROVIDER)
def dataset_synthetic(request: HttpRequest) -> HttpResponse:
    form = SyntheticForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ds = services.dataset_create_synthetic(user=request.user, **form.cleaned_data)
        except (DataError, ValidationError) as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Synthetic dataset “{ds.name}” created.")
            return redirect("training:dataset_detail", pk=ds.pk)
    return render(request, "training/dataset_form.html", {"form": form, "kind": "synthetic"})


@role_required(PROVIDER)
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ds = get_object_or_404(Dataset, pk=pk)
    header, rows = selectors.dataset_preview(ds)
    columns = selectors.dataset_columns(ds)
    integer = [c["integer"] for c in columns]
    # each column formatted alike: integer columns as integers, the others with three decimals; the class as is
    rows = [[cell(v, integer[j]) for j, v in enumerate(row[:-1])] + [row[-1]] for row in rows]
    balance = charts.pie("Class balance", list(ds.class_counts), list(ds.class_counts.values()))
    return render(request, "training/dataset_detail.html", {
        "ds": ds, "header": header, "rows": rows, "columns": columns[:40], "balance_svg": mark_safe(balance)})


@role_required(PROVIDER)
def experiment_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(Experiment.objects.select_related("dataset"), 25).get_page(request.GET.get("page"))
    return render(request, "training/experiment_list.html", {"page": page})


@role_required(PROVIDER)
def experiment_create(request: HttpRequest) -> HttpResponse:
    initial = {"dataset": request.GET.get("dataset")} if request.GET.get("dataset") else None
    form = ExperimentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["rounds_"] = data.pop("rounds")
        try:
            exp = services.experiment_create(owner=request.user, **data)
        except (ValidationError, ValueError) as exc:
            _apply_errors(form, exc)
        else:
            if exp.error:
                messages.warning(request, f"Experiment “{exp.name}”: {exp.error}")
            else:
                messages.success(request, f"Experiment “{exp.name}” launched; background workers run its hospitals.")
            return redirect("training:experiment_detail", pk=exp.pk)
    return render(request, "training/experiment_form.html", {"form": form, "has_datasets": Dataset.objects.exists()})


def _progress(exp: Experiment) -> dict:
    return {"percent": exp.percent, "done": exp.status not in Experiment.ACTIVE, "fields": {
        "status": exp.get_status_display(), "round": f"{min(exp.current_round, exp.rounds)} of {exp.rounds}",
        "hospitals": f"{exp.hospitals_done} of {exp.n_hospitals}", "percent": f"{exp.percent}%",
        "accuracy": f"{(exp.final or {}).get('accuracy', 0):.3f}" if exp.final else "—"}}


@role_required(PROVIDER)
def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment.objects.select_related("dataset"), pk=pk)
    rounds = list(selectors.experiment_rounds(exp))
    curve = None
    if rounds:
        xs = [r.number for r in rounds]
        series = {"federated accuracy": [r.metrics.get("accuracy") for r in rounds]}
        if exp.centralised:
            series["centralised accuracy"] = [exp.centralised["accuracy"]] * len(xs)
        if exp.attack == "backdoor":
            series["backdoor success"] = [r.metrics.get("backdoor_success") for r in rounds]
        curve = mark_safe(charts.curves("Test accuracy per round", xs, series, "accuracy"))
    return render(request, "training/experiment_detail.html", {
        "exp": exp, "rounds": rounds, "curve": curve, "progress": _progress(exp), "metrics": selectors.METRICS,
        "recovered": selectors.accuracy_recovered(exp), "serving": selectors.current_global_model()})


@role_required(PROVIDER)
def experiment_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_progress(get_object_or_404(Experiment, pk=pk)))


@role_required(PROVIDER)
@require_POST
def experiment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment, pk=pk)
    if services.experiment_cancel(experiment=exp):
        messages.success(request, "Experiment cancelled; its workers stop after their current task.")
    else:
        messages.error(request, f"The experiment is {exp.get_status_display().lower()}; only queued or running experiments can be cancelled.")
    return redirect("training:experiment_detail", pk=pk)


@role_required(PROVIDER)
@require_POST
def experiment_serve(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment, pk=pk)
    try:
        services.experiment_serve(experiment=exp)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        when = "now" if exp.status == Experiment.Status.FINISHED else "as soon as it has finished"
        messages.success(request, f"Remote users get risk estimates from this experiment's global model {when}.")
    return redirect("training:experiment_detail", pk=pk)


@role_required(PROVIDER)
@require_POST
def experiment_references(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment.objects.select_related("dataset"), pk=pk)
    try:
        launched = services.experiment_references(experiment=exp, owner=request.user)
    except ValidationError as exc:
        messages.error(request, "The reference runs were not launched: " + " ".join(exc.messages))
        return redirect("training:experiment_detail", pk=pk)
    for e in launched:
        if e.error:
            messages.warning(request, f"“{e.name}”: {e.error}")
    if launched:
        messages.success(request, "Launched: " + ", ".join(e.name for e in launched) + ". The comparison fills in as they finish.")
    else:
        messages.info(request, "The clean and undefended references of this setting already exist." if exp.attack != "none"
                      else "A run without attack needs no reference runs.")
    return redirect("training:experiment_detail", pk=pk)


@role_required(PROVIDER)
def accuracy_results(request: HttpRequest) -> HttpResponse:
    return render(request, "training/accuracy_results.html", {"rows": selectors.accuracy_results(), "metrics": selectors.METRICS})


@role_required(PROVIDER)
def accuracy_chart(request: HttpRequest) -> HttpResponse:
    rows = selectors.accuracy_results()[:12]
    svg = None
    if rows:
        # the number first: a label cut short to fit still tells which experiment its bars are
        labels = [f"#{r['experiment'].pk} {r['dataset']} · {defense_label(r['defense'])}"
                  + (f" · {attack_label(r['attack'])}" if r["attack"] != "none" else "") for r in rows]
        svg = mark_safe(charts.grouped_bars("Test accuracy: centralised vs federated", labels, {
            "centralised": [r["centralised"].get("accuracy") for r in rows],
            "federated": [r["federated"].get("accuracy") for r in rows]}, "accuracy"))
    return render(request, "training/accuracy_chart.html", {"rows": rows, "svg": svg})
