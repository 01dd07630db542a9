from django.urls import path

from . import apis

urlpatterns = [
    path("detectors/", apis.DetectorListApi.as_view(), name="api_poisoning_detectors"),
    path("predictions/", apis.PredictionListApi.as_view(), name="api_poisoning_predictions"),
    path("predictions/batch/", apis.PredictionBatchApi.as_view(), name="api_poisoning_batch"),
    path("predictions/export.csv", apis.PredictionExportApi.as_view(), name="api_poisoning_export"),
    path("poisoning/ratio/", apis.RatioApi.as_view(), name="api_poisoning_ratio"),
    path("experiments/<int:pk>/updates/", apis.ExperimentUpdatesApi.as_view(), name="api_poisoning_updates"),
]
