"""CSV downloads: streamed row by row, with cells escaped against formula injection."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable

from django.http import StreamingHttpResponse

from fedcore.data import parse_number

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """Text that a spreadsheet would read as a formula (also after leading spaces or line breaks)
    gets a leading apostrophe; numbers stay numbers, also written as text (a class label "-1"),
    so that a download uploads again as it was."""
    if not isinstance(value, str) or not value.lstrip(" \n").startswith(FORMULA_PREFIXES):
        return value
    try:
        if math.isfinite(parse_number(value)):
            return value
    except ValueError:
        pass
    return "'" + value


class _Echo:
    def write(self, value: str) -> str:
        return value


def stream_csv(filename: str, header: list[str], rows: Iterable[Iterable]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([csv_safe(h) for h in header])
        for row in rows:
            yield writer.writerow([csv_safe(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
