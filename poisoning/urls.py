from django.urls import path

from . import views

app_name = "poisoning"

urlpatterns = [
    path("detectors/", views.detector_list, name="detector_list"),
    path("detectors/train/", views.detector_train, name="detector_train"),
    path("detectors/<int:pk>/activate/", views.detector_activate, name="detector_activate"),
    path("predict/", views.predict, name="predict"),
    path("predict/batch/", views.predict_batch, name="predict_batch"),
    path("my-predictions/", views.my_predictions, name="my_predictions"),
    path("batches/<uuid:batch>.csv", views.batch_download, name="batch_download"),
    path("predictions/", views.prediction_list, name="prediction_list"),
    path("predictions/download.csv", views.download, name="download"),
    path("experiments/<int:pk>/updates.csv", views.experiment_updates_csv, name="experiment_updates_csv"),
    path("ratio/", views.ratio_chart, name="ratio_chart"),
    path("ratio/results/", views.ratio_results, name="ratio_results"),
]
