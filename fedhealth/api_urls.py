"""The REST API: each app contributes its endpoints under /api/."""

from django.urls import include, path

from accounts import apis as account_apis

urlpatterns = [
    path("auth/token/", account_apis.ObtainTokenApi.as_view(), name="api_token"),
    path("me/", account_apis.MeApi.as_view(), name="api_me"),
    path("", include("training.api_urls")),
    path("", include("poisoning.api_urls")),
    path("", include("ledger.api_urls")),
]
