"""Refuse the next request of a user whose account was revoked (or is not authorized yet)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from .models import Status


def status_message(status: str) -> str:
    if status == Status.PENDING:
        return "Your account is awaiting authorization by an administrator. You can log in once it is authorized."
    if status == Status.REVOKED:
        return "Your access has been revoked by an administrator. Contact your consortium admin."
    return "Your account is not active."


class ActiveAccountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_active:
            message = status_message(user.status)
            logout(request)
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"error": {"status": 403, "code": "account_inactive", "message": message, "fields": {}}},
                    status=403,
                )
            messages.error(request, message)
            return redirect("accounts:login")
        return self.get_response(request)
