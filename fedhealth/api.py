"""One error format for the whole REST API: {"error": {"status", "code", "message", "fields"}}."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from fedcore.data import parse_whole_number
from fedhealth.fields import WHOLE_NUMBER_MESSAGE


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with a 400 two bodies it lets through to a server error: one
    nested deeper than Python's recursion limit, and one whose strings hold a lone surrogate
    (such as \\udc80, valid JSON but not text: no response could echo it back as UTF-8)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply") from None
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError("JSON parse error - a string holds a lone surrogate (such as \\udc80), "
                                        "which is not text") from None
        return data


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):  # as DRF converts them, but here, so that the code is DRF's too
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    fields: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is not valid; see fields."
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    elif isinstance(detail, dict) and "detail" in detail:
        message = str(detail["detail"])
    else:
        message = str(detail)
    response.data = error_body(response.status_code, getattr(exc, "default_code", "error"), message, fields)
    return response


def error_body(http_status: int, code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    return {"error": {"status": http_status, "code": code, "message": message, "fields": fields or {}}}


def error_response(message: str, *, code: str = "invalid", http_status: int = status.HTTP_400_BAD_REQUEST, fields: dict | None = None) -> Response:
    """For services that raise domain errors: the same envelope as DRF's own errors."""
    return Response(error_body(http_status, code, message, fields), status=http_status)


def query_int(params, name: str, *, required: bool = False) -> int | None:
    """A whole-number query parameter (None when absent and not required); a clear 400 otherwise."""
    value = params.get(name, "")
    if value == "" and not required:
        return None
    try:
        return parse_whole_number(value)
    except ValueError:
        raise exceptions.ValidationError({name: [WHOLE_NUMBER_MESSAGE]}) from None


def is_api_request(request: HttpRequest) -> bool:
    """Requests under /api/ get their 404 and 500 errors in the API's envelope, not as pages."""
    return request.path.startswith("/api/")


def error_json(http_status: int, code: str, message: str) -> JsonResponse:
    """The envelope outside DRF (Django's 404 and 500 handlers)."""
    return JsonResponse(error_body(http_status, code, message), status=http_status)
