"""Pages that compose several apps: the role dashboards and the error pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import selectors as account_selectors
from accounts.permissions import PROVIDER, REMOTE, role_required
from fedhealth.api import error_json, is_api_request
from ledger.selectors import ledger_status
from poisoning import selectors as poisoning_selectors
from training import selectors as training_selectors
from training.forms import FeatureForm
from training.models import Experiment


def index(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:home")
    return render(request, "index.html")


@role_required(PROVIDER)
def provider_dashboard(request: HttpRequest) -> HttpResponse:
    experiments = Experiment.objects.select_related("dataset")
    return render(request, "dashboard/provider.html", {
        "running": list(experiments.filter(status__in=Experiment.ACTIVE).order_by("-created")[:5]),
        "finished": list(experiments.filter(status=Experiment.Status.FINISHED).order_by("-finished")[:5]),
        "ledger": ledger_status(),
        "user_counts": account_selectors.user_status_counts(role=REMOTE),
        "predictions": list(poisoning_selectors.predictions()[:6]),
        "ratios": poisoning_selectors.prediction_ratios()["overall"],
    })


@role_required(REMOTE)
def remote_home(request: HttpRequest) -> HttpResponse:
    exp = training_selectors.current_global_model()
    check = form = risk = None
    if exp is not None:
        check = training_selectors.global_model_check(exp)
        form = FeatureForm(training_selectors.dataset_columns(exp.dataset), request.POST or None, prefix="risk")
        if request.method == "POST" and not check["ok"]:
            messages.error(request, "The global model failed its ledger check, so it is not used.")
        elif request.method == "POST" and form.is_valid():
            proba = training_selectors.disease_risk(exp, form.values(), check)
            positive = exp.dataset.class_names[-1]
            risk = {"label": positive, "probability": proba[positive], "all": proba}
    return render(request, "dashboard/remote.html", {
        "model": exp, "check": check, "form": form, "risk": risk,
        "predictions": list(poisoning_selectors.predictions(user=request.user)[:5]),
    }, status=400 if request.method == "POST" and risk is None else 200)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else "Your role does not give access to this page."
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return error_json(404, "not_found", "There is no API endpoint or object at this address.")
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return error_json(500, "server_error", "The server could not handle this request; the error was logged.")
    # No context processors on purpose: the error may come from them.
    from django.template import loader

    return HttpResponse(loader.get_template("errors/500.html").render(), status=500)
