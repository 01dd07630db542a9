from django.urls import path

from . import views

app_name = "training"

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/synthetic/", views.dataset_synthetic, name="dataset_synthetic"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("experiments/", views.experiment_list, name="experiment_list"),
    path("experiments/new/", views.experiment_create, name="experiment_create"),
    path("experiments/<int:pk>/", views.experiment_detail, name="experiment_detail"),
    path("experiments/<int:pk>/progress.json", views.experiment_progress, name="experiment_progress"),
    path("experiments/<int:pk>/cancel/", views.experiment_cancel, name="experiment_cancel"),
    path("experiments/<int:pk>/references/", views.experiment_references, name="experiment_references"),
    path("experiments/<int:pk>/serve/", views.experiment_serve, name="experiment_serve"),
    path("results/", views.accuracy_results, name="accuracy_results"),
    path("results/chart/", views.accuracy_chart, name="accuracy_chart"),
]
