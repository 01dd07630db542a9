from django.urls import path

from . import views

app_name = "ledger"

urlpatterns = [
    path("", views.block_list, name="block_list"),
    path("blocks/<int:height>/", views.block_detail, name="block_detail"),
    path("entries/<int:pk>/", views.entry_detail, name="entry_detail"),
    path("verify/", views.verify, name="verify"),
    path("digest.json", views.digest_download, name="digest"),
]
