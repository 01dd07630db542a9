from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import PROVIDER, REMOTE, HasRole, has_role
from fedcore.data import DataError
from fedhealth.api import error_response
from fedhealth.csvexport import stream_csv
from fedhealth.fields import PlainIntegerSerializerField
from training.models import Experiment

from . import selectors, services
from .forms import batch_file_size
from .models import Detector, Prediction, UpdateRecord

FILTERS = [OpenApiParameter(n, str, description=d) for n, d in
           (("status", "Poisoned or Benign"), ("dataset", "dataset name"), ("q", "search user, dataset or batch"))]


def _filtered(request, **extra):
    return selectors.predictions(**selectors.prediction_filters(request.query_params), **extra)


def _active_detector(pk) -> Detector:
    return get_object_or_404(Detector, pk=pk, active=True)


class DetectorSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")

    class Meta:
        model = Detector
        fields = ["id", "dataset", "version", "classifier", "scores", "poison_fraction", "model_sha256", "feature_ranges",
                  "created"]


class DetectorListApi(generics.ListAPIView):
    """Active poisoning-status predictors with the fields a record needs."""

    serializer_class = DetectorSerializer
    permission_classes = [HasRole.of(PROVIDER, REMOTE)]

    def get_queryset(self):
        return selectors.active_detectors()


class PredictionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    detector_version = serializers.IntegerField(source="detector.version")

    class Meta:
        model = Prediction
        fields = ["id", "created", "user", "dataset_name", "detector", "detector_version", "inputs", "status",
                  "probability", "reasons", "source", "batch"]


@extend_schema_field(OpenApiTypes.NUMBER)
class FeatureValueField(serializers.Field):
    """Passed on as sent: prediction_create checks every value (a number in its plausible range, never a boolean)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class PredictRequest(serializers.Serializer):
    detector = PlainIntegerSerializerField(help_text="id of an active predictor (GET /api/detectors/)")
    values = serializers.DictField(child=FeatureValueField(allow_null=True),
                                   help_text="every feature of the predictor's dataset: a number inside its plausible range")
    diagnosis = serializers.CharField(help_text="the recorded diagnosis, one of the predictor's classes")


class PredictionListApi(APIView):
    """Remote users see and create their own predictions; the service provider sees all."""

    permission_classes = [HasRole.of(PROVIDER, REMOTE)]

    @extend_schema(parameters=FILTERS, responses=PredictionSerializer(many=True))
    def get(self, request):
        owner = None if has_role(request.user, PROVIDER) else request.user
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(_filtered(request, user=owner), request, view=self)
        return paginator.get_paginated_response(PredictionSerializer(page, many=True).data)

    @extend_schema(request=PredictRequest, responses={201: PredictionSerializer})
    def post(self, request):
        if not has_role(request.user, REMOTE):
            return error_response("Predictions are made by remote users.", code="permission_denied", http_status=status.HTTP_403_FORBIDDEN)
        s = PredictRequest(data=request.data)
        s.is_valid(raise_exception=True)
        detector = _active_detector(s.validated_data["detector"])
        try:
            p = services.prediction_create(user=request.user, detector=detector, values=s.validated_data["values"],
                                           diagnosis=s.validated_data["diagnosis"], source="api")
        except DataError as exc:
            return error_response(str(exc))
        return Response(PredictionSerializer(p).data, status=status.HTTP_201_CREATED)


class BatchRequest(serializers.Serializer):
    detector = PlainIntegerSerializerField()
    file = serializers.FileField(validators=[batch_file_size])


class PredictionBatchApi(APIView):
    """Upload a CSV of records; the answer is the same CSV with status, probability and reasons."""

    permission_classes = [HasRole.of(REMOTE)]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=BatchRequest, responses={(200, "text/csv"): OpenApiTypes.STR})
    def post(self, request):
        s = BatchRequest(data=request.data)
        s.is_valid(raise_exception=True)
        detector = _active_detector(s.validated_data["detector"])
        try:
            batch = services.predictions_batch(user=request.user, detector=detector, content=s.validated_data["file"].read(),
                                               source="api")
        except DataError as exc:
            return error_response(f"Nothing was stored. {exc}")
        header, rows = selectors.batch_csv(batch, selectors.predictions(user=request.user))
        response = stream_csv(f"fedhealth-batch-{batch[:8]}.csv", header, rows)
        response["X-Batch-Id"] = batch
        return response


class PredictionExportApi(APIView):
    """All predictions (filtered) as a streamed CSV."""

    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(parameters=FILTERS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        return stream_csv("fedhealth-predictions.csv", selectors.CSV_HEADER, selectors.prediction_csv_rows(_filtered(request)))


class RatioApi(APIView):
    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"predictions": selectors.prediction_ratios(), "experiments": selectors.experiment_ratios()})


class UpdateRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = UpdateRecord
        fields = ["round_no", "hospital", "malicious", "attack", "val_accuracy", "val_loss", "update_norm", "cosine",
                  "rows_harmed", "status", "aggregated", "encrypted", "verify_seconds", "signature_ok", "reason", "update_hash"]


UPDATE_FILTERS = [
    OpenApiParameter("round", int, description="only this round"),
    OpenApiParameter("status", str, enum=list(selectors.STATUSES), description="only this predicted status"),
    OpenApiParameter("truth", str, enum=list(selectors.TRUTHS), description="only malicious or only honest hospitals"),
]


class ExperimentUpdatesApi(APIView):
    """Every update of an experiment with its verdict (filtered by round, status, ground truth),
    and the detection quality over all of them."""

    permission_classes = [HasRole.of(PROVIDER)]

    @extend_schema(parameters=UPDATE_FILTERS, responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        exp = get_object_or_404(Experiment, pk=pk)
        paginator = PageNumberPagination()
        records = selectors.update_records(experiment=exp, **selectors.update_filters(request.query_params))
        page = paginator.paginate_queryset(records.order_by("round_no", "hospital"), request, view=self)
        response = paginator.get_paginated_response(UpdateRecordSerializer(page, many=True).data)
        response.data["detection"] = selectors.detection_metrics(experiment=exp)
        return response
