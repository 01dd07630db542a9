from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import PROVIDER, REMOTE, HasRole
from fedhealth.api import query_int

from . import selectors
from .models import Block, Entry


class BlockSerializer(serializers.ModelSerializer):
    class Meta:
        model = Block
        fields = ["height", "prev_hash", "merkle_root", "timestamp", "authority", "signature", "block_hash", "entry_count"]


class BlockListApi(generics.ListAPIView):
    serializer_class = BlockSerializer
    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(parameters=[OpenApiParameter("experiment", str), OpenApiParameter("round", int),
                               OpenApiParameter("hospital", int)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = self.request.query_params
        return selectors.block_list(experiment=p.get("experiment", "")[:64], round_no=query_int(p, "round"),
                                    hospital=query_int(p, "hospital"))


ReportSerializer = inline_serializer("LedgerReport", {
    "intact": serializers.BooleanField(), "height": serializers.IntegerField(), "digest": serializers.CharField(),
    "entries": serializers.IntegerField(), "problem": serializers.CharField(), "block": serializers.IntegerField(allow_null=True),
    "entry": serializers.IntegerField(allow_null=True), "summary": serializers.CharField(),
})


class VerifyApi(APIView):
    """Verify the chain; optionally against an exported digest (height + block_hash)."""

    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(request=None, responses=ReportSerializer,
                   parameters=[OpenApiParameter("height", int, description="the digest's height: -1 (empty chain) or more"),
                               OpenApiParameter("block_hash", str)])
    def get(self, request):
        expected = None
        if "height" in request.query_params:
            height = query_int(request.query_params, "height", required=True)
            try:
                expected = selectors.expected_digest(height, request.query_params.get("block_hash", ""))
            except ValueError:
                raise exceptions.ValidationError({"height": [selectors.DIGEST_HEIGHT_MESSAGE]}) from None
        r = selectors.ledger_verify(expected_digest=expected)
        return Response({"intact": r.intact, "height": r.height, "digest": r.digest, "entries": r.entries,
                         "problem": r.problem, "block": r.block, "entry": r.entry, "summary": r.summary()})


class ProofApi(APIView):
    """Merkle inclusion proof of one entry, with its sealed block header."""

    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(responses=inline_serializer("InclusionProof", {
        "entry": serializers.DictField(), "proof": serializers.ListField(child=serializers.ListField()),
        "block": serializers.DictField(), "valid": serializers.BooleanField()}))
    def get(self, request, pk: int):
        return Response(selectors.inclusion_proof(get_object_or_404(Entry.objects.select_related("block"), pk=pk)))


class ModelCheckApi(APIView):
    """Does this model hash match the global model sealed for the round? (hospitals, remote users)"""

    permission_classes = [HasRole.of(PROVIDER, REMOTE)]

    @extend_schema(parameters=[OpenApiParameter("experiment", str, required=True), OpenApiParameter("round", int, required=True),
                               OpenApiParameter("model_hash", str, required=True)],
                   responses=inline_serializer("ModelCheck", {"authentic": serializers.BooleanField(), "message": serializers.CharField()}))
    def get(self, request):
        p = request.query_params
        ok, message = selectors.verify_model_hash(experiment=p.get("experiment", ""), round_no=query_int(p, "round", required=True),
                                                  model_hash=p.get("model_hash", ""))
        return Response({"authentic": ok, "message": message})
