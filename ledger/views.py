from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.permissions import PROVIDER, role_required
from fedcore.data import parse_whole_number

from . import selectors
from .models import Block, Entry


@role_required(PROVIDER)
def block_list(request: HttpRequest) -> HttpResponse:
    experiment = request.GET.get("experiment", "")[:64]
    numbers, invalid = {}, []
    for name in ("round", "hospital"):
        value = request.GET.get(name, "")
        try:
            numbers[name] = parse_whole_number(value) if value != "" else None
        except ValueError:
            invalid.append(name)
    if invalid:  # a round or hospital that is not a whole number matches no block; the page says so
        blocks = selectors.block_list().none()
    else:
        blocks = selectors.block_list(experiment=experiment, round_no=numbers["round"], hospital=numbers["hospital"])
    page = Paginator(blocks, 25).get_page(request.GET.get("page"))
    names = selectors.authority_names()
    for b in page.object_list:
        b.authority_name = names.get(b.authority)
    return render(request, "ledger/block_list.html", {
        "page": page, "report": selectors.ledger_status(), "experiment": experiment,
        "round": request.GET.get("round", ""), "hospital": request.GET.get("hospital", ""), "invalid": invalid,
    })


@role_required(PROVIDER)
def block_detail(request: HttpRequest, height: int) -> HttpResponse:
    blk = get_object_or_404(Block, height=height)  # not "block": templates use that name for {% block %}
    return render(request, "ledger/block_detail.html", {
        "blk": blk, "entries": blk.entries.order_by("index"), "authority": selectors.authority_names().get(blk.authority),
    })


@role_required(PROVIDER)
def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(Entry.objects.select_related("block"), pk=pk)
    proof = selectors.inclusion_proof(entry)
    return render(request, "ledger/entry_detail.html", {
        "entry": entry, "proof": proof, "payload": json.dumps(proof["entry"]["payload"], indent=2, ensure_ascii=False),
        "proof_json": json.dumps(proof, indent=2, ensure_ascii=False),
    })


@role_required(PROVIDER)
def verify(request: HttpRequest) -> HttpResponse:
    """Verify the whole chain; optionally against a digest exported earlier (uploaded)."""
    error, expected = "", None
    if request.method == "POST" and not request.FILES.get("digest"):
        error = "choose the digest file (JSON) exported earlier to verify against it"
    elif request.method == "POST":
        upload = request.FILES["digest"]
        try:
            if upload.size > 10_000:
                raise ValueError("a digest file is a few hundred bytes; this file is too large")
            expected = selectors.parse_digest(upload.read().decode("utf-8", errors="replace"))
        except ValueError as exc:
            error = str(exc)
    report = selectors.ledger_verify(expected_digest=expected)
    return render(request, "ledger/verify.html", {"report": report, "error": error, "checked_digest": expected})


@role_required(PROVIDER)
def digest_download(request: HttpRequest) -> HttpResponse:
    report = selectors.ledger_verify()
    response = HttpResponse(json.dumps(selectors.digest_document(report), indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="ledger-digest-{report.height}.json"'
    return response
