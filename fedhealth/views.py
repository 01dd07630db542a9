"""Pages that compose several apps: the role dashboards and the error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import selectors as account_selectors
from accounts.permissions import PROVIDER, REMOTE, role_required


def index(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:home")
    return render(request, "index.html")


@role_required(PROVIDER)
def provider_dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/provider.html",
        {"user_counts": account_selectors.user_status_counts()},
    )


@role_required(REMOTE)
def remote_home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/remote.html", {})


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else "Your role does not give access to this page."
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors on purpose: the error may come from them.
    from django.template import loader

    return HttpResponse(loader.get_template("errors/500.html").render(), status=500)
