from django.urls import path

from . import apis

urlpatterns = [
    path("datasets/", apis.DatasetListApi.as_view(), name="api_training_datasets"),
    path("datasets/upload/", apis.DatasetUploadApi.as_view(), name="api_training_dataset_upload"),
    path("datasets/<int:pk>/", apis.DatasetDetailApi.as_view(), name="api_training_dataset"),
    path("experiments/", apis.ExperimentListApi.as_view(), name="api_training_experiments"),
    path("experiments/<int:pk>/", apis.ExperimentDetailApi.as_view(), name="api_training_experiment"),
    path("experiments/<int:pk>/results/", apis.ExperimentResultsApi.as_view(), name="api_training_results"),
    path("experiments/<int:pk>/cancel/", apis.ExperimentCancelApi.as_view(), name="api_training_cancel"),
]
