from django.urls import path

from . import apis

urlpatterns = [
    path("ledger/blocks/", apis.BlockListApi.as_view(), name="api_ledger_blocks"),
    path("ledger/verify/", apis.VerifyApi.as_view(), name="api_ledger_verify"),
    path("ledger/entries/<int:pk>/proof/", apis.ProofApi.as_view(), name="api_ledger_proof"),
    path("ledger/model-check/", apis.ModelCheckApi.as_view(), name="api_ledger_model_check"),
]
