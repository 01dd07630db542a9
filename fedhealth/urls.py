from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

handler403 = "fedhealth.views.forbidden"
handler404 = "fedhealth.views.not_found"
handler500 = "fedhealth.views.server_error"

urlpatterns = [
    path("", views.index, name="index"),
    path("dashboard/", views.provider_dashboard, name="dashboard"),
    path("home/", views.remote_home, name="remote_home"),
    path("accounts/", include("accounts.urls")),
    path("training/", include("training.urls")),
    path("poisoning/", include("poisoning.urls")),
    path("ledger/", include("ledger.urls")),
    path("api/", include("fedhealth.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("django-admin/", admin.site.urls),
]
