from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import PROVIDER, HasRole
from fedcore.attacks import ATTACKS
from fedcore.data import MAX_COLUMN_NAME_LENGTH, DataError, format_size
from fedcore.rounds import DEFENSES
from fedhealth.api import error_response
from fedhealth.fields import PlainIntegerSerializerField

from . import services
from .models import Dataset, Experiment, Round, value_range

PROVIDER_ONLY = [HasRole.of(PROVIDER)]


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "source", "target_column", "n_rows", "n_features", "feature_names",
                  "class_names", "class_counts", "created"]


class DatasetListApi(generics.ListAPIView):
    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    permission_classes = PROVIDER_ONLY


class DatasetDetailApi(generics.RetrieveAPIView):
    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    permission_classes = PROVIDER_ONLY


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    file = serializers.FileField()
    target_column = serializers.CharField(max_length=MAX_COLUMN_NAME_LENGTH)


def _validation_response(exc: Exception) -> Response:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return error_response("The request is not valid; see fields.", fields=exc.message_dict)
    return error_response(str(exc) if isinstance(exc, DataError) else " ".join(getattr(exc, "messages", [str(exc)])))


class DatasetUploadApi(APIView):
    """Upload a CSV dataset (multipart); validated completely before anything is stored."""

    permission_classes = PROVIDER_ONLY
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer})
    def post(self, request):
        s = DatasetUploadSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        upload = s.validated_data["file"]
        if upload.size > settings.DATASET_UPLOAD_MAX_BYTES:
            return error_response(f"The file is larger than allowed; the limit is {format_size(settings.DATASET_UPLOAD_MAX_BYTES)}.", code="too_large")
        try:
            ds = services.dataset_create_upload(name=s.validated_data["name"], content=upload.read(),
                                                target_column=s.validated_data["target_column"],
                                                max_bytes=settings.DATASET_UPLOAD_MAX_BYTES, user=request.user)
        except (DataError, ValidationError) as exc:
            return _validation_response(exc)
        return Response(DatasetSerializer(ds).data, status=status.HTTP_201_CREATED)


class ExperimentSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "name", "dataset", "model_kind", "n_hospitals", "rounds", "partition", "alpha", "local_epochs",
                  "learning_rate", "batch_size", "seed", "attack", "malicious_fraction", "defense", "encrypted",
                  "status", "current_round", "hospitals_done", "percent", "error", "centralised", "final", "detection",
                  "created", "started", "finished"]
        read_only_fields = ["status", "current_round", "hospitals_done", "error", "centralised", "final", "detection",
                            "created", "started", "finished"]


class LaunchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    # a plain integer field: a related field would take 2.9 as dataset 2 and fail on 1e400
    # at most 2^53 - 1, the largest integer a browser's JSON keeps exact (the API docs' example)
    dataset = PlainIntegerSerializerField(min_value=1, max_value=2**53 - 1, help_text="id of a dataset (GET /api/datasets/)")
    model_kind = serializers.ChoiceField(["mlp", "logreg"], default="mlp")
    n_hospitals = PlainIntegerSerializerField(**value_range("n_hospitals"), default=10)
    rounds = PlainIntegerSerializerField(**value_range("rounds"), default=10)
    partition = serializers.ChoiceField(["iid", "dirichlet"], default="iid")
    alpha = serializers.FloatField(**value_range("alpha"), default=0.5)
    local_epochs = PlainIntegerSerializerField(**value_range("local_epochs"), default=2)
    learning_rate = serializers.FloatField(**value_range("learning_rate"), default=0.01)
    batch_size = PlainIntegerSerializerField(**value_range("batch_size"), default=32)
    seed = PlainIntegerSerializerField(**value_range("seed"), default=0)
    attack = serializers.ChoiceField(list(ATTACKS), default="none")
    malicious_fraction = serializers.FloatField(**value_range("malicious_fraction"), default=0.0)
    defense = serializers.ChoiceField(list(DEFENSES), default="verification")
    encrypted = serializers.BooleanField(default=True)

    def validate_dataset(self, pk: int) -> Dataset:
        try:
            return Dataset.objects.get(pk=pk)
        except Dataset.DoesNotExist:
            raise serializers.ValidationError(f"there is no dataset with id {pk}") from None


class ExperimentListApi(APIView):
    permission_classes = PROVIDER_ONLY

    @extend_schema(responses=ExperimentSerializer(many=True))
    def get(self, request):
        from rest_framework.pagination import PageNumberPagination

        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(Experiment.objects.all(), request, view=self)
        return paginator.get_paginated_response(ExperimentSerializer(page, many=True).data)

    @extend_schema(request=LaunchSerializer, responses={201: ExperimentSerializer})
    def post(self, request):
        s = LaunchSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        data["rounds_"] = data.pop("rounds")
        try:
            exp = services.experiment_create(owner=request.user, **data)
        except (ValidationError, ValueError) as exc:
            return _validation_response(exc)
        return Response(ExperimentSerializer(exp).data, status=status.HTTP_201_CREATED)


class ExperimentDetailApi(generics.RetrieveAPIView):
    queryset = Experiment.objects.all()
    serializer_class = ExperimentSerializer
    permission_classes = PROVIDER_ONLY


class RoundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Round
        fields = ["number", "status", "metrics", "global_hash", "seconds", "started", "finished"]


class ExperimentResultsApi(APIView):
    """Per-round test metrics, final and centralised metrics, detection quality."""

    permission_classes = PROVIDER_ONLY

    @extend_schema(responses=inline_serializer("ExperimentResults", {
        "experiment": ExperimentSerializer(), "rounds": RoundSerializer(many=True)}))
    def get(self, request, pk: int):
        exp = get_object_or_404(Experiment, pk=pk)
        return Response({"experiment": ExperimentSerializer(exp).data,
                         "rounds": RoundSerializer(exp.round_set.order_by("number"), many=True).data})


class ExperimentCancelApi(APIView):
    permission_classes = PROVIDER_ONLY

    @extend_schema(request=None, responses=ExperimentSerializer)
    def post(self, request, pk: int):
        exp = get_object_or_404(Experiment, pk=pk)
        if not services.experiment_cancel(experiment=exp):
            return error_response(f"The experiment is {exp.status}; only queued or running ones can be cancelled.",
                                  code="not_running", http_status=status.HTTP_409_CONFLICT)
        exp.refresh_from_db()
        return Response(ExperimentSerializer(exp).data)
